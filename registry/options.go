package registry

import (
	"time"

	"github.com/coordkit/coordkit/observe"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Option configures [Register].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	ttl     int
	session *concurrency.Session
	obs     *observe.Observer
}

// defaultTTL is short enough that a crashed instance leaves its callers
// within seconds, and long enough to ride out a leader election.
const defaultTTL = 10

// WithTTL sets the TTL in seconds of the leases that [Register] grants: how
// long the key outlives a process that died without deregistering. The
// default is 10. It panics if ttl is not positive. It has no effect with
// [WithSession].
func WithTTL(ttl int) Option {
	if ttl <= 0 {
		panic("registry: non-positive TTL")
	}
	return optionFunc(func(o *options) { o.ttl = ttl })
}

// WithSession puts the key on the lease of s, which the caller created and
// closes, instead of on leases that the registration grants. Several
// registrations may share one session. When s ends (its lease expired or
// was revoked, or it was closed) the registration ends too, with
// [ErrSessionExpired]: the lease is the caller's, so it cannot be replaced.
func WithSession(s *concurrency.Session) Option {
	return optionFunc(func(o *options) { o.session = s })
}

// WithObserver reports to o, as [observe.KindRegistry] with the key as
// name: the loss of the lease the key was on, as Lost (the registration
// then puts the key on a new lease, as it always does), and each restart of
// the watch on the key, as WatchRestarted. A nil o observes nothing.
func WithObserver(o *observe.Observer) Option {
	return optionFunc(func(opts *options) { opts.obs = o })
}

// ViewOption configures [Watch].
type ViewOption interface{ applyView(*viewOptions) }

type viewOptionFunc func(*viewOptions)

func (f viewOptionFunc) applyView(o *viewOptions) { f(o) }

type viewOptions struct {
	probe time.Duration
}

// WithProbeInterval sets how long a [View] waits without news from etcd
// before it checks with one small read that etcd still answers; while it
// does not, the View is stale. Each wait is d give or take a quarter, at
// random, so that many Views do not all check at once. The default is 2 s.
// It panics if d is not positive.
func WithProbeInterval(d time.Duration) ViewOption {
	if d <= 0 {
		panic("registry: non-positive probe interval")
	}
	return viewOptionFunc(func(o *viewOptions) { o.probe = d })
}
