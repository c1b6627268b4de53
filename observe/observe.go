package observe

import "time"

// Kinds of primitive reported in the events' Kind field. They are a small
// fixed set, fit for a metric label.
const (
	KindMutex     = "mutex"
	KindRead      = "rwmutex.read"
	KindWrite     = "rwmutex.write"
	KindSemaphore = "semaphore"
	KindElection  = "election"
	KindBarrier   = "barrier"
	KindQueue     = "queue"
	// KindRegistry is a registry registration: it reports the loss of
	// its lease (then registers again on a new one) and its watch's
	// restarts.
	KindRegistry = "registry"
	// KindConfig is a config Watcher: it reports its watch's restarts.
	KindConfig = "config"
)

// Results of an acquisition, in [Acquire.Result]: a small fixed set, fit
// for a metric label.
const (
	// ResultAcquired: the hold was taken.
	ResultAcquired = "acquired"
	// ResultBusy: a Try* call found someone ahead and did not wait.
	ResultBusy = "busy"
	// ResultCanceled: the caller's context ended first.
	ResultCanceled = "canceled"
	// ResultError: any other failure (session expired, etcd refused, ...).
	ResultError = "error"
)

// Reasons a hold was lost, in [Loss.Reason].
const (
	// ReasonDeleted: someone else deleted the hold's key.
	ReasonDeleted = "deleted"
	// ReasonSessionExpired: the session's lease is gone.
	ReasonSessionExpired = "session_expired"
	// ReasonLeaseUnconfirmed: the lease's local deadline passed with no
	// keep-alive answered: the server may have expired it.
	ReasonLeaseUnconfirmed = "lease_unconfirmed"
)

// Reasons a request was retried, in [Retry.Reason].
const (
	// ReasonTransient: etcd failed it while electing a leader, out of
	// quorum or out of reach.
	ReasonTransient = "transient"
	// ReasonNoAnswer: it had no answer within its attempt's bound.
	ReasonNoAnswer = "no_answer"
)

// Reasons a watch was re-opened, in [WatchRestart.Reason].
const (
	// ReasonCompacted: the revision to resume from was compacted away;
	// the caller reads the present again.
	ReasonCompacted = "compacted"
	// ReasonBroken: the watch broke (a member restarted or lost its
	// leader, the channel closed) and is opened again after a pause.
	ReasonBroken = "broken"
	// ReasonRefused: etcd refused the watch (permission denied); it is
	// not re-opened, the caller gets the error.
	ReasonRefused = "refused"
)

// Observer is a set of hooks, each optional, that coordkit calls as events
// happen. The zero value and a nil *Observer observe nothing. Hooks may be
// called from many goroutines at once.
type Observer struct {
	// Acquired is called when an acquisition ends, taken or not.
	Acquired func(Acquire)
	// Released is called when a hold is released by its owner.
	Released func(Release)
	// Lost is called when a hold ends without its owner releasing it.
	Lost func(Loss)
	// Retried is called before a request that etcd failed transiently is
	// sent again.
	Retried func(Retry)
	// WatchRestarted is called when a watch had to be opened again, or
	// was refused.
	WatchRestarted func(WatchRestart)
	// LeaderChanged is called when this process's leadership of an
	// election begins or ends (by Resign, loss or a failed Proclaim).
	LeaderChanged func(Leadership)
}

// Acquire describes one acquisition: a Lock, TryLock, Campaign, Acquire,
// Enter, or a queue's claim.
type Acquire struct {
	Kind   string        // one of the Kind constants
	Name   string        // the primitive's key prefix
	Result string        // one of the Result constants
	Wait   time.Duration // from the call to its end
	Token  int64         // the hold's fencing token when acquired, else 0
	Err    error         // why it failed; nil when acquired
}

// Release describes a hold released by its owner.
type Release struct {
	Kind  string
	Name  string
	Token int64
	Held  time.Duration // from acquisition to release
	Err   error         // the delete's error: the key is deleted later
}

// Loss describes a hold that ended without its owner releasing it.
type Loss struct {
	Kind   string
	Name   string
	Token  int64
	Held   time.Duration // from acquisition to when the loss was seen
	Reason string        // one of ReasonDeleted, ReasonSessionExpired, ReasonLeaseUnconfirmed
	Err    error
}

// Retry describes a request that is about to be sent again.
type Retry struct {
	Kind    string
	Name    string
	Attempt int    // the attempt that failed, from 1
	Reason  string // ReasonTransient or ReasonNoAnswer
	Err     error
}

// WatchRestart describes a watch that had to be opened again, or was
// refused.
type WatchRestart struct {
	Kind   string // the primitive whose watch it is, or "" for a watch shared by several
	Name   string // the key or prefix watched
	Reason string // ReasonCompacted, ReasonBroken or ReasonRefused
	Err    error  // the watch's error, if it had one
}

// Leadership describes a change of this process's leadership of an
// election.
type Leadership struct {
	Name   string // the election's key prefix
	Leader bool   // true when leadership began, false when it ended
	Token  int64  // the leadership's fencing token
}
