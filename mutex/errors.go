package mutex

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrLocked is returned by [Mutex.TryLock] when the lock is held by
	// someone else, or by another goroutine through the same *Mutex.
	ErrLocked = errors.New("mutex: locked by another session")

	// ErrNotLocked is returned by [Mutex.Unlock] when the handle does not
	// hold the lock, and by [Mutex.Err] before the first Lock and after
	// Unlock.
	ErrNotLocked = errors.New("mutex: not locked")

	// ErrSessionExpired is returned by [Mutex.Lock], [Mutex.TryLock] and
	// [Mutex.Err] when the session's lease is gone (expired, revoked or
	// closed). It is the same value in every coordkit package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [Mutex.Err] and [Mutex.Unlock] when a hold ended
	// without Unlock: its key was deleted by someone else, or the lease's
	// local deadline passed with no successful keep-alive probe. It is also
	// returned by Lock when the waiter's key disappears while it waits. It
	// is the same value in every coordkit package.
	ErrLost = errs.Lost
)
