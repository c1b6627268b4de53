package queue

import (
	"fmt"
	"time"

	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Option configures a [Queue].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	session  *concurrency.Session
	value    string
	batch    int
	observer *observe.Observer
}

// DefaultBatch is how many ready items a consumer reads at a time when none
// is set with [WithBatch].
const DefaultBatch = 8

// WithSession gives the queue a session for reliable consumption:
// [Queue.Claim] holds the items it hands out under the session's lease, so
// that they return to the queue if the consumer dies. The session is
// borrowed: the caller creates it and closes it, which makes every item
// still claimed through it visible again. It must be a session on the same
// etcd cluster as the queue's client. It panics if s is nil.
func WithSession(s *concurrency.Session) Option {
	if s == nil {
		panic("queue: WithSession(nil)")
	}
	return optionFunc(func(o *options) { o.session = s })
}

// WithValue sets the value stored in the claim markers that [Queue.Claim]
// writes, for example the consumer's host name and process id, so that
// operators can see who works on what. The default is empty.
func WithValue(v string) Option {
	return optionFunc(func(o *options) { o.value = v })
}

// WithBatch sets how many ready items a consumer reads at a time (default
// [DefaultBatch]). Consumers that lose a race for an item try another from
// the same batch instead of reading again, so a batch somewhat larger than
// the number of competing consumers keeps round trips per item low; when
// consumers collide, items within one batch may be handed out out of
// order (see the package documentation). It panics if n < 1 or n > 128.
func WithBatch(n int) Option {
	if n < 1 || n > 128 {
		panic(fmt.Sprintf("queue: batch %d out of range [1, 128]", n))
	}
	return optionFunc(func(o *options) { o.batch = n })
}

// EnqueueOption configures one [Queue.Enqueue].
type EnqueueOption interface{ applyEnqueue(*enqueueOptions) }

type enqueueOptionFunc func(*enqueueOptions)

func (f enqueueOptionFunc) applyEnqueue(o *enqueueOptions) { f(o) }

type enqueueOptions struct {
	priority  int
	notBefore time.Time
}

// Priorities range from MinPriority to MaxPriority. Lower values are served
// first, as in etcd's recipe.PriorityQueue and Curator's priority queue.
const (
	MinPriority = -1 << 15
	MaxPriority = 1<<15 - 1
)

// WithPriority sets the item's priority (default 0). Items with a lower
// value are dequeued before items with a higher one; items of equal
// priority are dequeued in the order they were enqueued. It panics if p is
// outside [MinPriority, MaxPriority].
func WithPriority(p int) EnqueueOption {
	if p < MinPriority || p > MaxPriority {
		panic(fmt.Sprintf("queue: priority %d out of range [%d, %d]", p, MinPriority, MaxPriority))
	}
	return enqueueOptionFunc(func(o *enqueueOptions) { o.priority = p })
}

// WithDelay makes the item eligible for dequeueing only d after Enqueue is
// called, as measured on the producer's clock. A d ≤ 0 means no delay.
func WithDelay(d time.Duration) EnqueueOption {
	return enqueueOptionFunc(func(o *enqueueOptions) {
		if d > 0 {
			o.notBefore = time.Now().Add(d)
		}
	})
}

// WithNotBefore makes the item eligible for dequeueing only from time t on.
// Consumers compare t with their own clocks. A t in the past means no
// delay.
func WithNotBefore(t time.Time) EnqueueOption {
	return enqueueOptionFunc(func(o *enqueueOptions) { o.notBefore = t })
}

// WithObserver reports the queue's claims and their losses, and its
// re-opened watches, to o (see package observe). The default, nil,
// observes nothing and costs nothing.
func WithObserver(o *observe.Observer) Option {
	return optionFunc(func(opts *options) { opts.observer = o })
}
