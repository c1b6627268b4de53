package waitq

import (
	"context"
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// WaitDelete waits until kv, read at revision readRev, is deleted, or until
// there is reason to look at the line again (the watch broke: compaction, a
// member change, a closed channel). A nil return means "re-check", never
// "you own it": callers must re-read with Check (or CheckSince, from
// deletedAt). It returns an error only when ctx is done or the lease is lost, or when the waiter's own key is
// gone ([errs.Lost]). deletedAt is the revision of the deletion when the
// watch delivered it, 0 when WaitDelete returned for another reason: a
// re-check needs to see the store at deletedAt or later
// ([Waiter.CheckSince]).
func (w *Waiter) WaitDelete(ctx context.Context, kv *mvccpb.KeyValue, readRev int64) (deletedAt int64, err error) {
	// No start revision: the watch starts at the store's current revision,
	// in sync, so a deletion is delivered as soon as it commits. A watch
	// from readRev+1 would be served by etcd's 100 ms catch-up loop whenever
	// anything was written since the read.
	return w.waitDelete(ctx, kv, readRev, clientv3.WithCreatedNotify())
}

// WaitDeleteFrom is WaitDelete with a watch that starts right after
// revision rev instead of at the current one. It costs no extra read, but
// if the store has moved since rev the deletion may be reported up to
// ~100 ms late (etcd's catch-up loop). Use it where that delay does not
// matter and round trips do, such as watching one's own key while holding.
func (w *Waiter) WaitDeleteFrom(ctx context.Context, kv *mvccpb.KeyValue, rev int64) error {
	_, err := w.waitDelete(ctx, kv, 0, clientv3.WithRev(rev+1))
	return err
}

func (w *Waiter) waitDelete(ctx context.Context, kv *mvccpb.KeyValue, readRev int64, start clientv3.OpOption) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := watch(wctx, w, string(kv.Key), start, clientv3.WithFilterPut())
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-w.tracker.Lost():
			return 0, w.tracker.Err()
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				if ctx.Err() == nil {
					obs.WatchRestarted(w.obs, w.kind, string(kv.Key), observe.ReasonBroken, wr.Err())
				}
				return 0, w.pause(ctx)
			}
			w.calm()
			if wr.Created {
				if readRev > 0 && wr.Header.Revision > readRev {
					// The store moved between our read and the watch: the key
					// may be gone already. Read it again, at the watch's
					// revision or later; the watch covers everything after.
					gone, err := w.gone(ctx, kv, wr.Header.Revision)
					if err != nil || gone {
						return 0, err
					}
				}
				continue
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return ev.Kv.ModRevision, nil
				}
			}
		}
	}
}

// gone reports whether kv no longer exists with its create revision, in a
// read guarded by the waiter's own key that reflects revision minRev or
// later.
func (w *Waiter) gone(ctx context.Context, kv *mvccpb.KeyValue, minRev int64) (bool, error) {
	var resp *clientv3.TxnResponse
	err := w.Retrying(ctx, nil, func(ctx context.Context) (err error) {
		resp, err = w.CheckSince(ctx, minRev, string(kv.Key), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		if errors.Is(err, errs.Lost) || errors.Is(err, errs.SessionExpired) || ctx.Err() != nil {
			return false, err
		}
		return true, w.pause(ctx) // another failure: let the caller look again
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) == 0 || kvs[0].CreateRevision != kv.CreateRevision, nil
}

// pause backs off before the caller re-checks after a broken watch, so a
// member that keeps failing is not hammered.
func (w *Waiter) pause(ctx context.Context) error {
	if w.pace == nil {
		w.pace = retry.New()
	}
	return w.pace.PauseOr(ctx, w.tracker.Lost(), w.tracker.Err)
}

// calm makes the next pause short again, after a watch answered.
func (w *Waiter) calm() {
	if w.pace != nil {
		w.pace.Reset()
	}
}
