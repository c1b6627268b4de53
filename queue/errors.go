package queue

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrEmpty is returned by [Queue.TryDequeue] and [Queue.TryClaim] when
	// no item is ready: the queue is empty, or every item in it is claimed
	// or not yet due.
	ErrEmpty = errors.New("queue: empty")

	// ErrNotClaimed is returned by [Claim.Ack] and [Claim.Nack] after the
	// claim was already acknowledged or released, and by [Claim.Err] then.
	ErrNotClaimed = errors.New("queue: not claimed")

	// ErrSessionExpired is returned by [Queue.Claim], [Queue.TryClaim],
	// [Claim.Ack], [Claim.Nack] and [Claim.Err] when the session's lease is
	// gone (expired, revoked or closed). It is the same value in every
	// coordkit package.
	ErrSessionExpired = errs.SessionExpired

	// ErrLost is returned by [Claim.Ack], [Claim.Nack] and [Claim.Err] when
	// a claim ended without Ack or Nack: its marker was deleted by someone
	// else, or the lease's local deadline passed with no successful
	// keep-alive probe. The item is, or soon will be, visible to other
	// consumers again. It is the same value in every coordkit package.
	ErrLost = errs.Lost
)
