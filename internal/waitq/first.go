package waitq

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrWouldWait is returned by [Waiter.Acquire] with a [First] turn that
// must not wait, when someone is ahead in line.
var ErrWouldWait = errors.New("waitq: someone is ahead in line")

// LineRead is how many keys of the line the joining Txn of a [First] turn
// reads: a line no longer than this is seen whole, so the key just ahead
// is known without another request.
//
// The read is in key order, the only order in which etcd stops copying at
// the limit: a read sorted by create revision, or filtered by it, copies
// out every key under the prefix first. The joining Txn writes, so it runs
// in etcd's single apply loop, where such a copy for each of a burst of N
// joins is O(N²) work that every other write and every lease renewal waits
// behind. (etcd still visits each key of the range in its in-memory index,
// to count them: that much a long line costs every read of it.)
const LineRead = 64

// First is the rule of a mutex and of an election, shared with etcd's
// concurrency package: a waiter is admitted once its key has the lowest
// create revision under its prefix. The waiter's key may lie outside the
// prefix (a reader's does): then only the keys under the prefix count.
type First struct {
	// Block makes [Waiter.Acquire] wait for those ahead; without it,
	// Acquire returns [ErrWouldWait] at once if anyone is ahead.
	Block bool
}

// Reads implements [Turn]: up to [LineRead] keys of the line, keys only, in
// key order. An uncontended acquisition is decided by this one Txn (the
// line holds only the waiter's key). A waiter made with [Tail] that may
// wait joins through the line's tail instead, when it has one.
func (f First) Reads(w *Waiter) []clientv3.Op {
	if w.tail && f.Block {
		return w.tailOps()
	}
	return []clientv3.Op{clientv3.OpGet(w.prefix, lineOpts()...)}
}

// lineOpts reads up to [LineRead] keys of the line, keys only, in key order.
func lineOpts() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(LineRead)}
}

// Wait implements [Turn]: it waits for the deletion of the key just ahead,
// one at a time, re-checking the line after each. A line longer than
// [LineRead] is read whole once more, outside etcd's apply loop, to find
// the key just ahead.
func (f First) Wait(ctx context.Context, w *Waiter, resp *clientv3.TxnResponse) error {
	var pred *mvccpb.KeyValue
	readRev := resp.Header.Revision
	var err error
	switch line, slot := joinRead(resp.Responses[1]); {
	case slot != nil:
		// Joined through the tail: its slot named a waiter who joined
		// before us, the one just ahead unless one that does not write the
		// tail joined in between (the read after its deletion finds it).
		// The slot that replaced it names us.
		w.tailed = true
		if pred = slotWaiter(w.prefix, slot); pred == nil {
			pred, readRev, err = w.ahead(ctx, readRev)
		}
	case line.More:
		// Every key the Join read but ours was there before it: with more
		// than one key, someone is ahead.
		if !f.Block && newestAhead(w, line.Kvs) != nil {
			return ErrWouldWait
		}
		if w.tail && f.Block {
			// First, so that the waiters of a burst that join after us
			// join through the tail as soon as can be.
			w.startTail(ctx)
		}
		pred, readRev, err = w.ahead(ctx, readRev)
	default:
		pred = newestAhead(w, line.Kvs)
	}
	for err == nil && pred != nil {
		if !f.Block {
			return ErrWouldWait
		}
		var deletedAt int64
		if deletedAt, err = w.WaitDelete(ctx, pred, readRev); err == nil {
			pred, readRev, err = w.ahead(ctx, deletedAt)
		}
	}
	return err
}

// newestAhead returns the key with the largest create revision below w's
// among kvs, nil if there is none.
func newestAhead(w *Waiter, kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	var pred *mvccpb.KeyValue
	for _, kv := range kvs {
		if kv.CreateRevision < w.rev && (pred == nil || kv.CreateRevision > pred.CreateRevision) {
			pred = kv
		}
	}
	return pred
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
	ahead := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(w.rev-1), clientv3.WithKeysOnly())
	var resp *clientv3.TxnResponse
	var err error
	if minRev > 0 {
		resp, err = w.CheckSince(ctx, minRev, w.prefix, ahead...)
	} else {
		resp, err = w.Check(ctx, clientv3.OpGet(w.prefix, ahead...))
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
