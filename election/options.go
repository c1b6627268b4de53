package election

import (
	"fmt"
	"time"

	obsv "github.com/coordkit/coordkit/observe"
)

// Option configures [Run] or [New]. The options here configure Run only:
// [New] panics if given one, rather than ignore it.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	ttl         int // seconds
	value       string
	onNewLeader func(LeaderInfo)
	initial     time.Duration // see WithBackoff
	max         time.Duration
	recampaign  bool
	observer    *obsv.Observer

	// runOnly names the last option given that only Run uses, for New's
	// panic.
	runOnly string
}

// DefaultTTL is the lease TTL of the sessions [Run] creates unless
// [WithTTL] says otherwise: client-go's default lease duration. A leader
// that crashes is replaced after about this long; one that stops gracefully
// is replaced at once.
const DefaultTTL = 15 * time.Second

func buildOptions(opts []Option) options {
	o := options{ttl: int(DefaultTTL / time.Second), initial: 100 * time.Millisecond, max: 5 * time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// WithTTL sets the TTL of the lease of each session [Run] creates, rounded
// up to whole seconds (etcd's unit). A leader that crashes or is cut off is
// replaced after about one TTL; a leader cut off from etcd stops its work
// before then, by its own clock. The default is [DefaultTTL]. It panics if
// ttl is less than a second.
func WithTTL(ttl time.Duration) Option {
	if ttl < time.Second {
		panic("election: TTL below one second")
	}
	secs := int((ttl + time.Second - 1) / time.Second)
	return optionFunc(func(o *options) { o.ttl = secs; o.runOnly = "WithTTL" })
}

// WithValue sets the value [Run] campaigns with, for example the host name
// and process id, so that observers can tell who leads. The default is
// empty.
func WithValue(v string) Option {
	return optionFunc(func(o *options) { o.value = v; o.runOnly = "WithValue" })
}

// WithOnNewLeader makes [Run] call f with the election's leader when Run
// starts and after every change, whoever leads, as [Election.Observe]
// delivers it: a LeaderInfo with an empty Key means nobody leads. Calls are
// made one at a time, in order, from a goroutine that Run owns and joins
// before it returns; f should return quickly, since later changes wait for
// it.
func WithOnNewLeader(f func(LeaderInfo)) Option {
	return optionFunc(func(o *options) { o.onNewLeader = f; o.runOnly = "WithOnNewLeader" })
}

// WithBackoff sets how long [Run] waits before campaigning again after a
// failure: a leadership lost, a session that could not be created or
// expired while campaigning, or (with [WithRecampaign]) work that failed.
// The wait is exponential from initial, doubling up to max, each one drawn
// at random between half and one and a half times the current interval so
// that replicas that lost together do not campaign in step; it starts over
// from initial whenever Run leads. The defaults are 100 ms and 5 s. It
// panics if initial is negative or max is smaller than initial.
func WithBackoff(initial, max time.Duration) Option {
	if initial < 0 || max < initial {
		panic(fmt.Sprintf("election: WithBackoff(%v, %v): need 0 <= initial <= max", initial, max))
	}
	return optionFunc(func(o *options) { o.initial, o.max = initial, max; o.runOnly = "WithBackoff" })
}

// WithRecampaign makes [Run] campaign again when work returns while still
// leading, instead of returning: at once after a nil return, after a
// backoff pause after an error. Run then returns only when its context is
// done or etcd refuses this user.
func WithRecampaign() Option {
	return optionFunc(func(o *options) { o.recampaign = true; o.runOnly = "WithRecampaign" })
}

// WithObserver reports the election's campaigns, leadership changes,
// losses, retries and re-opened watches to o (see package observe); it
// configures both [New] and [Run]. The default, nil, observes nothing and
// costs nothing.
func WithObserver(o *obsv.Observer) Option {
	return optionFunc(func(opts *options) { opts.observer = o })
}
