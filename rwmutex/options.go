package rwmutex

import "github.com/coordkit/coordkit/observe"

// Option configures an [RWMutex].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	value    string
	observer *observe.Observer
}

// WithValue sets the value stored in the handle's key while it holds or
// waits for the lock, for example the holder's host name and process id, so
// that operators (and "lockctl status") can tell who holds it. The default
// is empty.
func WithValue(v string) Option {
	return optionFunc(func(o *options) { o.value = v })
}

// WithObserver reports the lock's acquisitions, releases, losses, retries
// and re-opened watches to o (see package observe). The default, nil,
// observes nothing and costs nothing.
func WithObserver(o *observe.Observer) Option {
	return optionFunc(func(o2 *options) { o2.observer = o })
}
