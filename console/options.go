package console

// Option configures [Handler].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	prefixes []string
	write    bool
	validate func(name string, data []byte) error
	hosts    []string // Host header values served besides loopback's
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

// WithAllowedHosts adds names the console answers to, as "host" (any
// port) or "host:port", besides loopback names (localhost, 127.0.0.1,
// [::1]) and the address a request arrived on. A request naming another
// host is refused (421), so that a domain rebound to the console's
// address cannot read it: give the names a reverse proxy passes on, or
// the machine's name for a console that listens beyond loopback.
func WithAllowedHosts(hosts ...string) Option {
	return optionFunc(func(o *options) { o.hosts = append(o.hosts, hosts...) })
}

func (o *options) normalise() {
	if len(o.prefixes) == 0 {
		o.prefixes = []string{""}
	}
}
