package config

import (
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/coordkit/coordkit/observe"
)

// DefaultMaxRequestBytes is etcd's default limit on the size of one request
// (its --max-request-bytes flag): 1.5 MiB.
const DefaultMaxRequestBytes = 3 << 19

// Option changes how [Publish], [Rollback] or [Watch] work. Each option's
// doc says which of them use it; the others ignore it.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	author, comment string
	validate        func([]byte) error
	expected        int64
	hasExpected     bool
	keep            int64
	maxRequest      int
	snapshot        string
	check           time.Duration
	startTimeout    time.Duration
	obs             *observe.Observer
}

func buildOptions(opts []Option) options {
	o := options{maxRequest: DefaultMaxRequestBytes, check: 5 * time.Second, startTimeout: 3 * time.Second}
	for _, op := range opts {
		op.apply(&o)
	}
	if o.author == "" {
		o.author = defaultAuthor()
	}
	return o
}

// defaultAuthor is user@host of this process, as far as it can tell.
func defaultAuthor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// WithAuthor records who publishes ([Publish], [Rollback]). The default is
// the process's user@host.
func WithAuthor(author string) Option { return optionFunc(func(o *options) { o.author = author }) }

// WithComment records why a version is published ([Publish], [Rollback]).
func WithComment(comment string) Option {
	return optionFunc(func(o *options) { o.comment = comment })
}

// WithValidator checks a value. [Publish] and [Rollback] run it before
// writing anything and return an error wrapping [ErrInvalid] and its error
// if it refuses. A [Watcher] runs it after decoding and does not apply a
// value it refuses.
func WithValidator(validate func(data []byte) error) Option {
	return optionFunc(func(o *options) { o.validate = validate })
}

// WithExpectedVersion makes [Publish] and [Rollback] compare-and-set: they
// write only if the current version is v (0: nothing published yet), and
// return [ErrConflict] otherwise.
func WithExpectedVersion(v int64) Option {
	return optionFunc(func(o *options) { o.expected, o.hasExpected = v, true })
}

// WithRetention makes [Publish] and [Rollback] keep only the last n version
// keys: older ones are deleted in the same transaction, with one ranged
// delete whatever their number. It panics if n < 1. The default keeps
// every version.
func WithRetention(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("config: retention %d < 1", n))
	}
	return optionFunc(func(o *options) { o.keep = int64(n) })
}

// WithMaxRequestBytes tells [Publish] and [Rollback] the etcd server's
// request size limit, when it is not [DefaultMaxRequestBytes].
func WithMaxRequestBytes(n int) Option {
	return optionFunc(func(o *options) { o.maxRequest = n })
}

// WithSnapshotFile makes a [Watcher] keep the last value it applied in the
// file at path, written atomically (a temporary file renamed over it), and
// start from it when etcd cannot be read at [Watch] time; see [Watch].
func WithSnapshotFile(path string) Option {
	return optionFunc(func(o *options) { o.snapshot = path })
}

// WithCheckInterval sets how long a [Watcher] waits without news from its
// watch before it reads the value from etcd, which tells whether etcd is
// reachable ([Watcher.Stale]) and catches up on anything missed. The
// default is 5 s. It panics if d <= 0.
func WithCheckInterval(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("config: check interval %v <= 0", d))
	}
	return optionFunc(func(o *options) { o.check = d })
}

// WithObserver makes a [Watcher] report each restart of its watch to o
// (WatchRestarted, as [observe.KindConfig] with the current key as name).
// A nil o observes nothing. Used by [Watch].
func WithObserver(o *observe.Observer) Option {
	return optionFunc(func(opts *options) { opts.obs = o })
}

// WithStartTimeout bounds how long [Watch] waits for its first read of
// etcd before it falls back to the [WithSnapshotFile] file. The default is
// 3 s. Without a snapshot file [Watch] waits as long as its ctx allows.
// It panics if d <= 0.
func WithStartTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("config: start timeout %v <= 0", d))
	}
	return optionFunc(func(o *options) { o.startTimeout = d })
}
