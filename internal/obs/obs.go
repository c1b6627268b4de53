// Package obs is the one place where coordkit reports events to an
// [observe.Observer]: the acquisition engine, the hold monitor, the retry
// loop and the watch follower call these helpers, and nothing else calls
// an observer's hooks. To add a metric or a log line, add it here (or to
// the observers in package observe).
//
// Every helper accepts a nil observer and then does nothing; callers read
// the clock only when [On] is true, so an unobserved primitive pays a nil
// check and nothing more.
package obs

import (
	"context"
	"errors"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/observe"
)

// On reports whether o observes anything: callers skip timing when not.
func On(o *observe.Observer) bool { return o != nil }

// Now returns the time if o observes anything, else the zero time, for
// the start of a wait or a hold.
func Now(o *observe.Observer) time.Time {
	if o == nil {
		return time.Time{}
	}
	return time.Now()
}

// Acquired reports the end of an acquisition that started at start: taken
// with token when err is nil, else failed; busy tells a Try* call that
// found someone ahead.
func Acquired(o *observe.Observer, kind, name string, start time.Time, token int64, busy bool, err error) {
	if o == nil {
		return
	}
	e := observe.Acquire{Kind: kind, Name: name, Wait: time.Since(start), Err: err}
	switch {
	case err == nil:
		e.Result, e.Token = observe.ResultAcquired, token
	case busy:
		e.Result = observe.ResultBusy
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		e.Result = observe.ResultCanceled
	default:
		e.Result = observe.ResultError
	}
	if o.Acquired != nil {
		o.Acquired(e)
	}
	if err == nil && kind == observe.KindElection && o.LeaderChanged != nil {
		o.LeaderChanged(observe.Leadership{Name: name, Leader: true, Token: token})
	}
}

// Released reports a hold released by its owner, taken at since.
func Released(o *observe.Observer, kind, name string, token int64, since time.Time, err error) {
	if o == nil {
		return
	}
	if o.Released != nil {
		o.Released(observe.Release{Kind: kind, Name: name, Token: token, Held: time.Since(since), Err: err})
	}
	leaderEnded(o, kind, name, token)
}

// Lost reports a hold, taken at since, that ended with err without its
// owner releasing it. leaseErr is the session's lease tracker's error (nil
// while the lease is held): it tells a lease gone from a key deleted.
func Lost(o *observe.Observer, kind, name string, token int64, since time.Time, err, leaseErr error) {
	if o == nil {
		return
	}
	reason := observe.ReasonDeleted
	switch {
	case errors.Is(leaseErr, errs.SessionExpired) || (leaseErr == nil && errors.Is(err, errs.SessionExpired)):
		reason = observe.ReasonSessionExpired
	case leaseErr != nil:
		reason = observe.ReasonLeaseUnconfirmed
	}
	if o.Lost != nil {
		o.Lost(observe.Loss{Kind: kind, Name: name, Token: token, Held: time.Since(since), Reason: reason, Err: err})
	}
	leaderEnded(o, kind, name, token)
}

// leaderEnded reports the end of an election's leadership.
func leaderEnded(o *observe.Observer, kind, name string, token int64) {
	if kind == observe.KindElection && o.LeaderChanged != nil {
		o.LeaderChanged(observe.Leadership{Name: name, Leader: false, Token: token})
	}
}

// Retried reports that attempt (from 1) of a request failed with err and
// is about to be sent again.
func Retried(o *observe.Observer, kind, name string, attempt int, err error) {
	if o == nil || o.Retried == nil {
		return
	}
	reason := observe.ReasonTransient
	if errors.Is(err, errs.NoAnswer) {
		reason = observe.ReasonNoAnswer
	}
	o.Retried(observe.Retry{Kind: kind, Name: name, Attempt: attempt, Reason: reason, Err: err})
}

// WatchRestarted reports a watch of name re-opened (or refused) for
// reason, one of observe's watch Reason constants.
func WatchRestarted(o *observe.Observer, kind, name, reason string, err error) {
	if o == nil || o.WatchRestarted == nil {
		return
	}
	o.WatchRestarted(observe.WatchRestart{Kind: kind, Name: name, Reason: reason, Err: err})
}
