package console

// Option configures [Handler].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	prefixes []string
	write    bool
	validate func(name string, data []byte) error
}

// WithPrefix adds a key prefix to show, such as "jobs/". The default is
// the whole key space (the empty prefix), which a user limited by etcd's
// RBAC to some prefixes may not read: give those instead.
func WithPrefix(prefix string) Option {
	return optionFunc(func(o *options) { o.prefixes = append(o.prefixes, prefix) })
}

// WithWrite allows actions: breaking a hold, rolling a configuration back
// and publishing one. Without it the console is read-only.
func WithWrite() Option { return optionFunc(func(o *options) { o.write = true }) }

// WithValidator checks a configuration's data before the console
// publishes it; a value it refuses is not written and the page shows why.
// Rollbacks go through it too.
func WithValidator(validate func(name string, data []byte) error) Option {
	return optionFunc(func(o *options) { o.validate = validate })
}

func (o *options) normalise() {
	if len(o.prefixes) == 0 {
		o.prefixes = []string{""}
	}
}
