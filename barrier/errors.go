package barrier

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrEntered is returned by [DoubleBarrier.Enter] when the handle has
	// entered already (or another goroutine is entering through it): one
	// handle is one participant.
	ErrEntered = errors.New("barrier: already entered")

	// ErrNotEntered is returned by [DoubleBarrier.Leave] when the handle
	// has not entered, or has left already.
	ErrNotEntered = errors.New("barrier: not entered")

	// ErrSessionExpired is returned by [DoubleBarrier.Enter] when the
	// session's lease is gone (expired, revoked or closed). It is the same
	// value in every coordkit package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [DoubleBarrier.Enter] when the participant's
	// key disappears while it waits (deleted by someone else, or the lease's
	// local deadline passed). It is the same value in every coordkit
	// package.
	ErrLost = errs.Lost
)
