package semaphore

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrNoPermits is returned by [Semaphore.TryAcquire] when the request
	// does not fit now, or when someone is queued ahead of it (first come,
	// first served), or when another goroutine is acquiring or holding
	// through the same *Semaphore.
	ErrNoPermits = errors.New("semaphore: not enough permits")

	// ErrLimitMismatch is returned by [Semaphore.Acquire] and
	// [Semaphore.TryAcquire] when a participant that holds or waits on the
	// semaphore opened it with a different limit. Nothing is admitted on a
	// disagreement; see the package documentation for how to change a
	// limit.
	ErrLimitMismatch = errors.New("semaphore: limit differs from the other participants'")

	// ErrInvalidWeight is returned by [Semaphore.Acquire] and
	// [Semaphore.TryAcquire], without contacting etcd, for a request of
	// fewer than one permit or of more permits than the limit: one would be
	// meaningless and the other could never be granted.
	ErrInvalidWeight = errors.New("semaphore: weight must be between 1 and the limit")

	// ErrNotHeld is returned by [Semaphore.Release] when the handle holds no
	// permits, and by [Semaphore.Err] before the first Acquire and after
	// Release.
	ErrNotHeld = errors.New("semaphore: no permits held")

	// ErrSessionExpired is returned by [Semaphore.Acquire],
	// [Semaphore.TryAcquire] and [Semaphore.Err] when the session's lease is
	// gone (expired, revoked or closed). It is the same value in every
	// coordkit package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [Semaphore.Err] and [Semaphore.Release] when a
	// hold ended without Release: its key was deleted by someone else, or
	// the lease's local deadline passed with no successful keep-alive probe.
	// It is also returned by Acquire when the waiter's key disappears while
	// it waits. It is the same value in every coordkit package.
	ErrLost = errs.Lost
)
