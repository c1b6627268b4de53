package stm

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Isolation is a transaction isolation level. The levels and their meanings
// are etcd's (concurrency.Isolation); the package comment has a table of
// what each one allows.
type Isolation int

const (
	// SerializableSnapshot reads every key at the revision of the
	// attempt's first read, and commits only if no key it read, and no key
	// it writes, has changed since. It is the default.
	SerializableSnapshot Isolation = iota
	// Serializable reads every key at the revision of the attempt's first
	// read, and commits only if no key it read has changed since. Keys it
	// writes without reading are not checked.
	Serializable
	// RepeatableReads reads each key at the latest revision the first time
	// it is read, and returns the same value afterwards within an attempt.
	// It commits only if no key it read has changed since.
	RepeatableReads
	// ReadCommitted reads each key at the latest revision and commits
	// without any check.
	ReadCommitted
)

// String returns the level's name, such as "SerializableSnapshot".
func (i Isolation) String() string {
	switch i {
	case SerializableSnapshot:
		return "SerializableSnapshot"
	case Serializable:
		return "Serializable"
	case RepeatableReads:
		return "RepeatableReads"
	case ReadCommitted:
		return "ReadCommitted"
	}
	return fmt.Sprintf("Isolation(%d)", int(i))
}

// snapshot reports whether reads of an attempt all come from one revision.
func (i Isolation) snapshot() bool { return i == SerializableSnapshot || i == Serializable }

// Option configures [Run].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	iso         Isolation
	maxAttempts int // 0: no limit
	prefetch    []string
	initial     time.Duration // first conflict backoff; 0: retry at once
	max         time.Duration // cap of the conflict backoff
	stats       *Stats
}

// The default conflict backoff, chosen by measurement on a local etcd
// (coordbench's stm rows print attempts per commit): waiting lets the
// winner finish instead of colliding again. A larger cap helps more
// clients, at the cost of a longer tail.
const (
	defaultInitial = 2 * time.Millisecond
	defaultMax     = 25 * time.Millisecond
)

func buildOptions(opts []Option) options {
	o := options{iso: SerializableSnapshot, initial: defaultInitial, max: defaultMax}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// WithIsolation sets the isolation level. The default is
// [SerializableSnapshot]. It panics on an unknown level.
func WithIsolation(level Isolation) Option {
	if level < SerializableSnapshot || level > ReadCommitted {
		panic(fmt.Sprintf("stm: unknown isolation level %d", int(level)))
	}
	return optionFunc(func(o *options) { o.iso = level })
}

// WithMaxAttempts makes [Run] give up with [ErrTooManyAttempts] once the
// function has run n times without a commit. By default the number of
// attempts is bounded only by the context. It panics if n < 1.
func WithMaxAttempts(n int) Option {
	if n < 1 {
		panic(fmt.Sprintf("stm: WithMaxAttempts(%d): need at least one attempt", n))
	}
	return optionFunc(func(o *options) { o.maxAttempts = n })
}

// WithPrefetch names keys the function will read. They are read in the
// same round trip as each attempt's first read, so reading them costs no
// round trip of its own. A prefetched key that the function does not read
// is not checked at commit.
func WithPrefetch(keys ...string) Option {
	return optionFunc(func(o *options) { o.prefetch = append(o.prefetch, keys...) })
}

// WithBackoff sets the wait after a conflict: exponential from initial, up
// to max, each wait drawn at random between half and one and a half times
// the current interval. The defaults are
// 2 ms and 25 ms, suited to an etcd a fraction of a millisecond away; scale
// them with the round trip to a distant one. After a wait, the next attempt
// reads afresh, in its first round trip, everything the failed one read.
//
// initial 0 retries at once, as etcd's concurrency.NewSTM does, and then
// the failed commit itself returns what the attempt read, so a retry costs
// one round trip; under contention it costs many more attempts.
//
// Transient RPC errors are paced as in every coordkit call (see Faults in
// [github.com/coordkit/coordkit]), not by this option. It panics if
// initial is negative or max is smaller than initial.
func WithBackoff(initial, max time.Duration) Option {
	if initial < 0 || max < initial {
		panic(fmt.Sprintf("stm: WithBackoff(%v, %v): need 0 <= initial <= max", initial, max))
	}
	return optionFunc(func(o *options) { o.initial, o.max = initial, max })
}

// WithStats adds the outcome of each [Run] to s, for metrics.
func WithStats(s *Stats) Option {
	return optionFunc(func(o *options) { o.stats = s })
}

// Stats accumulates counts over many calls to [Run] (see [WithStats]). Its
// methods are safe for concurrent use; the zero value is ready to use.
type Stats struct {
	commits   atomic.Int64
	attempts  atomic.Int64
	conflicts atomic.Int64
	errors    atomic.Int64
}

// Commits returns the number of transactions that committed.
func (s *Stats) Commits() int64 { return s.commits.Load() }

// Attempts returns the number of times a transaction function ran.
func (s *Stats) Attempts() int64 { return s.attempts.Load() }

// Conflicts returns the number of attempts that failed to commit because a
// key they read or wrote had changed.
func (s *Stats) Conflicts() int64 { return s.conflicts.Load() }

// Errors returns the number of transient RPC errors that were retried.
func (s *Stats) Errors() int64 { return s.errors.Load() }

// AttemptsPerCommit returns Attempts/Commits, or 0 before the first commit.
func (s *Stats) AttemptsPerCommit() float64 {
	c := s.Commits()
	if c == 0 {
		return 0
	}
	return float64(s.Attempts()) / float64(c)
}

func (s *Stats) add(r Result, committed bool) {
	if s == nil {
		return
	}
	if committed {
		s.commits.Add(1)
	}
	s.attempts.Add(int64(r.Attempts))
	s.conflicts.Add(int64(r.Conflicts))
	s.errors.Add(int64(r.Errors))
}
