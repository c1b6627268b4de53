package waitq

import (
	"context"
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/session"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// WaitDelete waits until kv, read at revision readRev, is deleted, or until
// there is reason to look at the line again (a re-check after the watch
// started could not tell). A nil return means "re-check", never "you own
// it": callers must re-read with Check (or CheckSince, from deletedAt). It
// returns an error when ctx is done, the lease is lost, the waiter's own
// key is gone ([errs.Lost]), the client is closed or etcd refuses the
// watch. deletedAt is the revision of the deletion when the watch
// delivered it, 0 when WaitDelete returned for another reason: a re-check
// needs to see the store at deletedAt or later ([Waiter.CheckSince]).
func (w *Waiter) WaitDelete(ctx context.Context, kv *mvccpb.KeyValue, readRev int64) (deletedAt int64, err error) {
	// The follower's watch starts in sync with the store, so a deletion is
	// delivered as soon as it commits; a watch from readRev+1 would be
	// served by etcd's 100 ms catch-up loop whenever anything was written
	// since the read. If the store moved between the read and the watch,
	// the follower asks for a relist: the key may be gone already.
	f := w.follower(string(kv.Key), readRev)
	defer f.Close()
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	for {
		evs, relist, err := f.Next(bctx)
		if err != nil {
			return 0, w.waitErr(ctx, err)
		}
		if relist {
			// Read it again, at the watch's start or later (any member
			// that has caught up may answer); the watch covers what
			// follows.
			if gone, err := w.gone(bctx, kv, f.Started()); err != nil || gone {
				return 0, w.waitErr(ctx, err)
			}
			w.calm()
			continue
		}
		for _, ev := range evs {
			if ev.Type == mvccpb.DELETE {
				return ev.Kv.ModRevision, nil
			}
		}
	}
}

// WaitDeleteFrom is WaitDelete with a watch that starts right after
// revision rev instead of at the current one. It costs no extra read, but
// if the store has moved since rev the deletion may be reported up to
// ~100 ms late (etcd's catch-up loop). Use it where that delay does not
// matter and round trips do, such as watching one's own key while holding.
// It returns nil when the key is deleted or when the watch's revision was
// compacted away: the caller looks at the key itself.
func (w *Waiter) WaitDeleteFrom(ctx context.Context, kv *mvccpb.KeyValue, rev int64) error {
	f := w.follower(string(kv.Key), rev, follow.WithResume())
	defer f.Close()
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	for {
		evs, relist, err := f.Next(bctx)
		if err != nil {
			return w.waitErr(ctx, err)
		}
		if relist {
			return nil
		}
		for _, ev := range evs {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
}

// follower returns a follower of the deletions of key after rev, on the
// session's kept stream.
func (w *Waiter) follower(key string, rev int64, opts ...follow.Option) *follow.Follower {
	session.Of(w.session).KeepStream(w.prefix + idleSuffix)
	opts = append(opts, follow.WithFilterPut(), follow.Observed(w.obs, w.kind))
	return follow.New(w.client(), key, rev, opts...)
}

// waitErr is the error a wait returns for err, met with a context bound to
// the lease: the lease's loss rather than the bound context's cancellation,
// when that is what ended it.
func (w *Waiter) waitErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	if lerr := w.tracker.Err(); lerr != nil && errors.Is(err, context.Canceled) {
		return lerr
	}
	return err
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

// calm makes the next pause short again, after etcd answered.
func (w *Waiter) calm() {
	if w.pace != nil {
		w.pace.Reset()
	}
}
