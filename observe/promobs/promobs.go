// Package promobs is an [observe.Observer] that keeps Prometheus metrics.
// It lives in its own package so that coordkit's primitives do not depend
// on the Prometheus client; only a program that imports promobs does.
//
// The metrics, named in the style of client-go's:
//
//	coordkit_lock_wait_seconds{kind}               histogram of acquisition waits that ended with the hold taken
//	coordkit_acquisitions_total{kind,result}       acquisitions by result: acquired, busy, canceled, error
//	coordkit_hold_lost_total{kind,reason}          holds lost: deleted, session_expired, lease_unconfirmed
//	coordkit_election_is_leader{name}              1 while this process leads the election, else 0
//	coordkit_retries_total{kind,reason}            requests sent again: transient, no_answer
//	coordkit_watch_restarts_total{kind,reason}     watches re-opened: compacted, broken; or refused
//
// Labels are bounded: kind, result and reason take a few fixed values
// (observe's constants). Only the election gauge carries a name, since a
// process takes part in few elections and the issue of who leads which is
// the point of it; lock and semaphore names are left out, as a program
// may make them from unbounded input (a job id, a user).
package promobs

import (
	"github.com/coordkit/coordkit/observe"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	namespace string
	buckets   []float64
}

// WithNamespace replaces the metrics' "coordkit" prefix, for a program
// that keeps two sets apart.
func WithNamespace(ns string) Option {
	return optionFunc(func(o *options) { o.namespace = ns })
}

// WithBuckets sets the wait histogram's buckets, in seconds. The default
// runs from 1 ms to about 33 s, doubling.
func WithBuckets(b []float64) Option {
	return optionFunc(func(o *options) { o.buckets = b })
}

// New registers coordkit's metrics with reg and returns an observer that
// updates them. It returns reg's error if one of them is registered
// already (a second New on the same registry needs [WithNamespace]).
func New(reg prometheus.Registerer, opts ...Option) (*observe.Observer, error) {
	o := options{namespace: "coordkit", buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}
	for _, opt := range opts {
		opt.apply(&o)
	}
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: o.namespace, Name: "lock_wait_seconds",
		Help:    "Time from the call to the hold taken, for acquisitions that took it.",
		Buckets: o.buckets,
	}, []string{"kind"})
	acquisitions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: o.namespace, Name: "acquisitions_total",
		Help: "Acquisitions by result: acquired, busy (a Try that found someone ahead), canceled, error.",
	}, []string{"kind", "result"})
	lost := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: o.namespace, Name: "hold_lost_total",
		Help: "Holds that ended without their owner releasing them, by reason.",
	}, []string{"kind", "reason"})
	leader := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: o.namespace, Name: "election_is_leader",
		Help: "1 while this process leads the election, 0 after.",
	}, []string{"name"})
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: o.namespace, Name: "retries_total",
		Help: "Requests sent again after etcd failed them transiently, by reason.",
	}, []string{"kind", "reason"})
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: o.namespace, Name: "watch_restarts_total",
		Help: "Watches opened again (compacted, broken) or refused.",
	}, []string{"kind", "reason"})
	for _, c := range []prometheus.Collector{wait, acquisitions, lost, leader, retries, restarts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &observe.Observer{
		Acquired: func(e observe.Acquire) {
			acquisitions.WithLabelValues(e.Kind, e.Result).Inc()
			if e.Err == nil {
				wait.WithLabelValues(e.Kind).Observe(e.Wait.Seconds())
			}
		},
		Lost: func(e observe.Loss) { lost.WithLabelValues(e.Kind, e.Reason).Inc() },
		Retried: func(e observe.Retry) {
			retries.WithLabelValues(e.Kind, e.Reason).Inc()
		},
		WatchRestarted: func(e observe.WatchRestart) {
			restarts.WithLabelValues(e.Kind, e.Reason).Inc()
		},
		LeaderChanged: func(e observe.Leadership) {
			v := 0.0
			if e.Leader {
				v = 1
			}
			leader.WithLabelValues(e.Name).Set(v)
		},
	}, nil
}
