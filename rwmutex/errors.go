package rwmutex

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrLocked is returned by [RWMutex.TryLock] when anyone holds or waits
	// for the lock, and by [RWMutex.TryRLock] when a writer holds or waits
	// for it, or when another goroutine is locking or holding through the
	// same *RWMutex.
	ErrLocked = errors.New("rwmutex: locked by another session")

	// ErrNotLocked is returned by [RWMutex.Unlock] when the handle does not
	// hold the write lock, by [RWMutex.RUnlock] when it does not hold a read
	// lock, and by [RWMutex.Err] before the first lock and after unlocking.
	ErrNotLocked = errors.New("rwmutex: not locked")

	// ErrSessionExpired is returned by [RWMutex.Lock], [RWMutex.RLock], their
	// Try variants and [RWMutex.Err] when the session's lease is gone
	// (expired, revoked or closed). It is the same value in every coordkit
	// package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [RWMutex.Err], [RWMutex.Unlock] and
	// [RWMutex.RUnlock] when a hold ended without being unlocked: its key was
	// deleted by someone else, or the lease's local deadline passed with no
	// successful keep-alive probe. It is also returned by Lock and RLock when
	// the waiter's key disappears while it waits. It is the same value in
	// every coordkit package.
	ErrLost = errs.Lost
)
