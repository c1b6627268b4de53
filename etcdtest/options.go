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
