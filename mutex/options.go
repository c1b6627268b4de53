package mutex

// Option configures a [Mutex].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	value string
}

// WithValue sets the value stored in the lock's key while it is held or
// waited for, for example the holder's host name and process id, so that
// operators (and "lockctl status") can tell who holds it. The default is
// empty.
func WithValue(v string) Option {
	return optionFunc(func(o *options) { o.value = v })
}
