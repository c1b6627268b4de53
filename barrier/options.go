package barrier

import (
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Option configures a [Barrier] or a [DoubleBarrier].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	value    string
	session  *concurrency.Session
	observer *observe.Observer
}

// WithValue sets the value stored in the barrier's key by [Barrier.Hold],
// or in a participant's key by [DoubleBarrier.Enter], for example the
// host name and process id, so that operators can see who holds or waits.
// The default is empty.
func WithValue(v string) Option {
	return optionFunc(func(o *options) { o.value = v })
}

// WithSession makes [Barrier.Hold] put the barrier's key on the session's
// lease, so that the barrier is released when the holder's session ends
// (closed, or its lease expired because the holder died). Without it, a
// held barrier stays held until someone calls Release. Choose it only if
// waiters may safely pass when the holder dies. The session is borrowed.
// It panics if s is nil. [NewDouble] refuses it (it panics): a
// participant's key always lives on the session given to NewDouble.
func WithSession(s *concurrency.Session) Option {
	if s == nil {
		panic("barrier: WithSession(nil)")
	}
	return optionFunc(func(o *options) { o.session = s })
}

// WithObserver reports a [DoubleBarrier]'s entries and losses, and the
// re-opened watches of both kinds of barrier, to o (see package observe).
// The default, nil, observes nothing and costs nothing.
func WithObserver(o *observe.Observer) Option {
	return optionFunc(func(opts *options) { opts.observer = o })
}
