package waitq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/obs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrKeyInUse is returned by [Waiter.Acquire] when the waiter's key was
// written again by someone else while it joined: after deleting a leftover
// incarnation of the key, the Join still found one. Only a concurrent Join
// of the same key can cause it (an abandoned attempt of the same handle
// landing late), so the key is nobody's safe place in line: sharing it
// could admit two holders. Acquire deletes the incarnation it saw (guarded
// by its create revision) and the handle takes a new key next time.
var ErrKeyInUse = errors.New("waitq: key is being written by someone else")

// Turn is a primitive's rule for when a waiter that has joined the line is
// admitted: first in line, room under a weighted limit, a barrier's round.
type Turn interface {
	// Reads returns the reads to run in the Txn that joins the line,
	// after the write of the waiter's key.
	Reads(w *Waiter) []clientv3.Op
	// Wait decides from the joining Txn's response (the reads' answers
	// from resp.Responses[1] on) whether the waiter is admitted, and waits
	// until it is. It returns nil once admitted, the primitive's contention
	// sentinel (such as [ErrWouldWait]) for an attempt that must not wait,
	// or why it could not be admitted. It never deletes the waiter's key.
	Wait(ctx context.Context, w *Waiter, resp *clientv3.TxnResponse) error
}

// Acquire joins the line with value and waits until turn admits the
// waiter; it is the one acquisition sequence every primitive runs. The
// Join is bounded and tried again as [Waiter.Retrying] does (a retried
// Join marks the waiter abandoned), and a leftover incarnation of the key
// is replaced, never reused ([Waiter.JoinFresh]; a second one fails with
// [ErrKeyInUse]). Once admitted it waits for the lease to be confirmed
// ([Waiter.AwaitLease]).
//
// On success the caller owns the key and must delete it. On any error the
// key is deleted before Acquire returns ([Waiter.Abandon] after a failed
// Join, [Waiter.Leave] after, both bounded and detached if ctx is done),
// except when the session expired, which took the key with it. Errors are
// translated by [Waiter.Err]. Either way [Waiter.NextKey] then tells which
// key to join with next time.
func (w *Waiter) Acquire(ctx context.Context, value string, turn Turn) (err error) {
	start := obs.Now(w.obs)
	defer func() {
		w.decideNext(err)
		if obs.On(w.obs) {
			if err == nil {
				w.since = time.Now()
			}
			obs.Acquired(w.obs, w.kind, w.name, start, w.rev, errors.Is(err, ErrWouldWait), err)
		}
	}()
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	defer func() { err = w.Err(bctx, err) }()
	if err := bctx.Err(); err != nil {
		return err
	}
	var resp *clientv3.TxnResponse
	var fresh bool
	// Joining again with the same key is safe (put-if-absent), but a failed
	// attempt may still be applied later, even after the key is deleted:
	// abandoned makes the handle take a new key next time and the janitor
	// watch this one once it is deleted.
	err = w.Retrying(bctx, func() { w.abandoned = true }, func(ctx context.Context) (err error) {
		resp, fresh, err = w.JoinFresh(ctx, value, turn.Reads(w)...)
		return err
	})
	if err != nil {
		// The Join may have taken effect before ctx ended: remove the key.
		w.Abandon(ctx)
		return err
	}
	if !fresh {
		err = fmt.Errorf("%w: %s", ErrKeyInUse, w.key)
	} else {
		err = turn.Wait(bctx, w, resp)
	}
	if err == nil {
		err = w.AwaitLease(bctx)
	}
	if err != nil {
		if !errors.Is(err, errs.SessionExpired) { // else the key went with the lease
			w.Leave(ctx)
		}
		return err
	}
	return nil
}
