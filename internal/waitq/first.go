package waitq

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrWouldWait is returned by [Waiter.AcquireFirst] without waiting when
// someone is ahead in line.
var ErrWouldWait = errors.New("waitq: someone is ahead in line")

// AcquireFirst joins the line with value and returns once the waiter's key
// has the lowest create revision under the prefix: the rule of a mutex and
// of an election, shared with etcd's concurrency package. Without wait it
// returns [ErrWouldWait] at once if anyone is ahead. On any error it deletes
// its key before returning (with a detached, bounded context if ctx is
// done); on success the caller owns the key and must delete it.
func (w *Waiter) AcquireFirst(ctx context.Context, value string, wait bool) (err error) {
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	defer func() { err = w.Err(bctx, err) }()
	if err := bctx.Err(); err != nil {
		return err
	}
	// The newest two keys under the prefix: ours, written by this Txn, and
	// the one just ahead of it, if any. One round trip decides an
	// uncontended acquisition.
	top2 := append(clientv3.WithLastCreate(), clientv3.WithLimit(2), clientv3.WithKeysOnly())
	resp, fresh, err := w.Join(bctx, value, clientv3.OpGet(w.Prefix, top2...))
	if err == nil && !fresh {
		// A key of ours survived a release that could not reach etcd. Start
		// over with a new place in line rather than reuse a stale token.
		if err = w.Leave(bctx); err == nil {
			resp, fresh, err = w.Join(bctx, value, clientv3.OpGet(w.Prefix, top2...))
		}
	}
	if err != nil {
		// The Join may have taken effect before ctx ended: remove the key.
		w.Abandon(ctx)
		return err
	}
	var pred *mvccpb.KeyValue
	readRev := resp.Header.Revision
	if fresh {
		// Newest first: the first key older than ours is the one just ahead
		// (ours may lie outside the prefix, as a reader's does, so it need
		// not be among them).
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			if kv.CreateRevision < w.Rev {
				pred = kv
				break
			}
		}
	} else {
		pred, readRev, err = w.predecessor(bctx)
	}
	for err == nil && pred != nil {
		if !wait {
			err = ErrWouldWait
			break
		}
		if err = w.WaitDelete(bctx, pred, readRev); err == nil {
			pred, readRev, err = w.predecessor(bctx)
		}
	}
	if err == nil {
		err = w.AwaitLease(bctx)
	}
	if err != nil {
		w.Leave(ctx)
		return err
	}
	return nil
}

// predecessor returns the key just ahead of w in line, nil if w is first,
// in a read that fails with errs.Lost if w's own key is gone.
func (w *Waiter) predecessor(ctx context.Context) (*mvccpb.KeyValue, int64, error) {
	ahead := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(w.Rev-1), clientv3.WithKeysOnly())
	resp, err := w.Check(ctx, clientv3.OpGet(w.Prefix, ahead...))
	if err != nil {
		return nil, 0, err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return kvs[0], resp.Header.Revision, nil
}
