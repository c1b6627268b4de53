package waitq

import (
	"context"
	"errors"
	"strings"

	"github.com/coordkit/coordkit/internal/errs"
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
	w.Contended = false
	var pred *mvccpb.KeyValue
	var readRev int64
	var fresh bool
	// Joining again with the same key is safe (put-if-absent), but a failed
	// attempt may still be applied later, even after the key is deleted:
	// Abandoned makes the handle take a new key next time and the janitor
	// watch this one once it is deleted.
	err = w.Retrying(bctx, func() { w.Abandoned = true }, func(ctx context.Context) (err error) {
		pred, readRev, fresh, err = w.joinFirst(ctx, value)
		return err
	})
	if err != nil {
		// The Join may have taken effect before ctx ended: remove the key.
		w.Abandon(ctx)
		return err
	}
	if !fresh {
		// Still there (its delete raced with ours): wait in its place.
		pred, readRev, err = w.ahead(bctx, 0)
	}
	for err == nil && pred != nil {
		if !wait {
			err = ErrWouldWait
			break
		}
		var deletedAt int64
		if deletedAt, err = w.WaitDelete(bctx, pred, readRev); err == nil {
			pred, readRev, err = w.ahead(bctx, deletedAt)
		}
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

// joinFirst writes the waiter's key and finds the key just ahead of it.
// With TryEmpty it first writes the key only if the line is empty (and, for
// a key outside the line, the key is absent): a Txn that costs what a bare
// put-if-absent costs, and decides an uncontended acquisition by itself. If
// the line is not empty, or without TryEmpty, it joins with [Waiter.Join]
// and reads the newest two keys of the line in the same Txn: the key just
// ahead is the newest one older than ours. (One Txn doing both, the second
// in its Else branch, costs about 8% more than a bare put-if-absent even
// when the Else is not taken: a bigger request through consensus.) fresh is
// false when the key existed already; then pred is not known.
func (w *Waiter) joinFirst(ctx context.Context, value string) (pred *mvccpb.KeyValue, readRev int64, fresh bool, err error) {
	if w.TryEmpty {
		forget(w.Session, w.Key)
		// A range comparison holds for every key in the range, and an empty
		// range compares as a missing key.
		empty := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(w.Prefix), "=", 0).WithPrefix()}
		if !strings.HasPrefix(w.Key, w.Prefix) {
			empty = append(empty, clientv3.Compare(clientv3.CreateRevision(w.Key), "=", 0))
		}
		put := clientv3.OpPut(w.Key, value, clientv3.WithLease(w.Session.Lease()))
		resp, err := w.client().Txn(ctx).If(empty...).Then(put).Commit()
		if err != nil {
			return nil, 0, false, err
		}
		if resp.Succeeded {
			w.Rev = resp.Header.Revision
			return nil, w.Rev, true, nil
		}
	}
	w.Contended = true
	top2 := append(clientv3.WithLastCreate(), clientv3.WithLimit(2), clientv3.WithKeysOnly())
	// A key of ours that survived a release which could not reach etcd is
	// not reused: a new place in line, never a stale token.
	resp, fresh, err := w.JoinFresh(ctx, value, clientv3.OpGet(w.Prefix, top2...))
	if err != nil || !fresh {
		return nil, 0, fresh, err
	}
	// Newest first: the first key older than ours is the one just ahead
	// (ours may lie outside the prefix, as a reader's does, so it need not
	// be among them).
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		if kv.CreateRevision < w.Rev {
			return kv, resp.Header.Revision, true, nil
		}
	}
	return nil, resp.Header.Revision, true, nil
}

// ahead is [Waiter.predecessor], bounded and tried again as
// [Waiter.Retrying] does (each retry a linearizable read).
func (w *Waiter) ahead(ctx context.Context, minRev int64) (pred *mvccpb.KeyValue, readRev int64, err error) {
	err = w.Retrying(ctx, func() { minRev = 0 }, func(ctx context.Context) (err error) {
		pred, readRev, err = w.predecessor(ctx, minRev)
		return err
	})
	return pred, readRev, err
}

// predecessor returns the key just ahead of w in line, nil if w is first,
// in a read guarded by w's own key (it fails with errs.Lost if that is
// gone). The read reflects revision minRev or later; with minRev 0 it is
// linearizable.
func (w *Waiter) predecessor(ctx context.Context, minRev int64) (*mvccpb.KeyValue, int64, error) {
	ahead := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(w.Rev-1), clientv3.WithKeysOnly())
	var resp *clientv3.TxnResponse
	var err error
	if minRev > 0 {
		resp, err = w.CheckSince(ctx, minRev, w.Prefix, ahead...)
	} else {
		resp, err = w.Check(ctx, clientv3.OpGet(w.Prefix, ahead...))
	}
	if err != nil {
		return nil, 0, err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return kvs[0], resp.Header.Revision, nil
}
