package waitq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CleanupTimeout bounds the work done after a caller's context has ended
// (deleting a waiter's key), so that cleanup never hangs on an unreachable
// etcd. If it runs out, the session's janitor deletes the key once etcd
// answers again, or the key goes with the session's lease.
const CleanupTimeout = 2 * time.Second

// lostCleanupTimeout bounds cleanup once the lease is judged lost, when
// etcd is likely out of reach and the caller should learn of the loss
// without delay; the janitor finishes the job.
const lostCleanupTimeout = 500 * time.Millisecond

// Leave deletes the waiter's key if it still has the create revision it
// joined with. It runs even when ctx is already done, on a detached context
// bounded by [CleanupTimeout], and does not wait at all once the lease is
// judged lost. A key it could not delete is handed to the session's
// janitor, which deletes it when etcd can be reached again; the error is
// returned for information only.
func (w *Waiter) Leave(ctx context.Context) error {
	if w.rev == 0 {
		return w.Abandon(ctx)
	}
	err := w.cleanup(ctx, w.rev, clientv3.OpDelete(w.key))
	w.Linger()
	return err
}

// Linger has the janitor delete Key each time it shows up during
// [AbandonLinger], if a request that writes it may still arrive late
// (abandoned). Leave, Abandon and Release call it; a primitive that deletes
// its key by other means calls it after.
func (w *Waiter) Linger() {
	if w.abandoned && !errors.Is(w.tracker.Err(), errs.SessionExpired) {
		deferDeleteUntil(w.session, w.key, 0, time.Now().Add(AbandonLinger))
	}
}

// Abandon deletes the waiter's key for a Join whose outcome is unknown (its
// context ended mid-flight), where Rev was never learnt. The delete is sent
// at once and unguarded, so that an etcd that is only slow to answer
// applies it before the caller returns; it marks the waiter abandoned, because such a
// delete could also reach etcd late (through a slow member) and remove the
// key of a later Join of the same name: the handle should then take a new
// key for its next Join. Whether it succeeds or not, the session's janitor
// then deletes the key again, guarded (it reads the create revision first),
// each time it shows up during [AbandonLinger]: the Join itself may be
// applied after the delete.
func (w *Waiter) Abandon(ctx context.Context) error {
	w.abandoned = true
	err := w.cleanup(ctx, 0, clientv3.OpDelete(w.key))
	w.Linger()
	return err
}

func (w *Waiter) cleanup(ctx context.Context, rev int64, del clientv3.Op) error {
	timeout := CleanupTimeout
	switch lerr := w.tracker.Err(); {
	case errors.Is(lerr, errs.SessionExpired):
		return nil // the key went with the lease
	case lerr != nil:
		// The lease could not be confirmed in time: etcd may be out of
		// reach, or only slow to answer. Send the delete (a slow etcd
		// applies it at once) but do not wait long for the answer.
		timeout = lostCleanupTimeout
	}
	cctx, cancel := cleanupCtx(ctx, timeout)
	defer cancel()
	txn := w.client().Txn(cctx)
	if rev != 0 {
		txn = txn.If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", rev))
	}
	if _, err := txn.Then(append([]clientv3.Op{del}, w.untailOps()...)...).Commit(); err != nil {
		deferDelete(w.session, w.key, rev)
		if cctx.Err() != nil && ctx.Err() == nil {
			// Our own bound ran out, not the caller's: a DeadlineExceeded
			// would read as the caller's deadline.
			return fmt.Errorf("waitq: etcd did not confirm the delete of %s within %v; the session deletes it once etcd answers", w.key, timeout)
		}
		return err
	}
	return nil
}

// Release deletes a holder's key, guarded by its create revision (unless
// made [Unguarded]), with the caller's context, and reports whether the key was still there. If the
// request fails, the key is handed to the session's janitor (so it does
// not stay in line for the life of the session) and the error is returned:
// the hold has ended either way.
func (w *Waiter) Release(ctx context.Context) (existed bool, err error) {
	untail := w.untailOps()
	switch {
	case w.unguarded && untail == nil:
		var resp *clientv3.DeleteResponse
		if resp, err = w.client().Delete(ctx, w.key); err == nil {
			existed = resp.Deleted > 0
		}
	case w.unguarded:
		var resp *clientv3.TxnResponse
		if resp, err = w.client().Txn(ctx).Then(append([]clientv3.Op{clientv3.OpDelete(w.key)}, untail...)...).Commit(); err == nil {
			existed = resp.Responses[0].GetResponseDeleteRange().Deleted > 0
		}
	default:
		var resp *clientv3.TxnResponse
		if resp, err = w.client().Txn(ctx).If(w.IsOwner()).Then(append([]clientv3.Op{clientv3.OpDelete(w.key)}, untail...)...).Commit(); err == nil {
			existed = resp.Succeeded
		}
	}
	if err != nil && !errors.Is(w.tracker.Err(), errs.SessionExpired) {
		deferDelete(w.session, w.key, w.rev)
	}
	w.Linger()
	return existed, err
}

func cleanupCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return context.WithTimeout(ctx, timeout)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
