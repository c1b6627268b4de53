package etcdtest

import (
	"time"

	"go.uber.org/zap"
)

// Option configures a server or cluster started by [NewServer], [NewCluster]
// or [Start].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	tick         time.Duration
	election     time.Duration
	logger       *zap.Logger
	startTimeout time.Duration
	fsync        bool
	clientAddr   string

	tls            bool
	clientCertAuth bool
	rootPassword   string // auth is enabled when set
}

func defaultOptions() options {
	return options{
		tick:         100 * time.Millisecond,
		election:     1000 * time.Millisecond,
		startTimeout: 30 * time.Second,
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// WithTiming sets the raft heartbeat interval and election timeout. The
// defaults, 100 ms and 1 s, keep elections stable on a busy two-core machine
// running tests under the race detector; shorter values make leader loss
// recover faster on an idle one. election must be at least five heartbeats.
func WithTiming(heartbeat, election time.Duration) Option {
	return optionFunc(func(o *options) {
		o.tick = heartbeat
		o.election = election
	})
}

// WithLogger sends the etcd server's log to lg. By default the server logs
// nothing, so that test output stays readable.
func WithLogger(lg *zap.Logger) Option {
	return optionFunc(func(o *options) { o.logger = lg })
}

// WithStartTimeout bounds how long starting (or restarting) a member may take
// before it fails with the server's error. The default is 30 s.
func WithStartTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.startTimeout = d })
}

// WithFsync makes the server fsync its write-ahead log as a production
// server does. By default it does not: test data need not survive a machine
// crash, and fsync dominates the cost of every write on shared disks.
func WithFsync() Option {
	return optionFunc(func(o *options) { o.fsync = true })
}

// WithClientAddr makes a one-member server listen for clients on addr (for
// example "127.0.0.1:2379") instead of a free port. It is meant for [Start]
// in programs such as "lockctl dev"; tests should keep the free ports so that
// packages can run in parallel.
func WithClientAddr(addr string) Option {
	return optionFunc(func(o *options) { o.clientAddr = addr })
}

// WithTLS makes the members serve clients over TLS only, with a server
// certificate signed by a certificate authority made for this cluster
// (see [NewTLSFiles]); nothing is checked in. [Cluster.Endpoints] and
// [Member.ProxyEndpoint] are then https:// URLs, [Cluster.TLSFiles] gives
// the CA and a client certificate, and the cluster's own clients use them.
// Peer traffic stays plain. The proxies pass the TLS bytes through
// untouched, so [Member.Blackhole] works as without TLS.
func WithTLS() Option {
	return optionFunc(func(o *options) { o.tls = true })
}

// WithClientCertAuth is [WithTLS] with client certificates required: a
// client must present one signed by the cluster's CA, such as
// [TLSFiles].Cert.
func WithClientCertAuth() Option {
	return optionFunc(func(o *options) { o.tls, o.clientCertAuth = true, true })
}

// WithAuth turns on etcd's authentication once the cluster is ready, with a
// user "root" (role root) whose password is rootPassword. The cluster's own
// clients log in as root; create users of narrower roles with
// [Cluster.AddUser].
func WithAuth(rootPassword string) Option {
	return optionFunc(func(o *options) { o.rootPassword = rootPassword })
}
