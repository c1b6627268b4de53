package waitq

import (
	"context"
	"errors"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrWouldWait is returned by [Waiter.Acquire] with a [First] turn that
// must not wait, when someone is ahead in line.
var ErrWouldWait = errors.New("waitq: someone is ahead in line")

// First is the rule of a mutex and of an election, shared with etcd's
// concurrency package: a waiter is admitted once its key has the lowest
// create revision under its prefix. The waiter's key may lie outside the
// prefix (a reader's does): then only the keys under the prefix count.
type First struct {
	// Block makes [Waiter.Acquire] wait for those ahead; without it,
	// Acquire returns [ErrWouldWait] at once if anyone is ahead.
	Block bool
	// TryEmpty makes Acquire first try to write the key only if the line
	// is empty (and, for a key outside the line, the key is absent): a Txn
	// as cheap as a bare put-if-absent, which decides an uncontended
	// acquisition by itself. Set it when the line was empty last time
	// ([Waiter.Contended] was false): when it is not, the attempt costs a
	// round trip.
	TryEmpty bool
}

// Empty implements [Turn]. A range comparison holds for every key in the
// range, and an empty range compares as a missing key.
func (f First) Empty(w *Waiter) []clientv3.Cmp {
	if !f.TryEmpty {
		return nil
	}
	empty := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(w.prefix), "=", 0).WithPrefix()}
	if !strings.HasPrefix(w.key, w.prefix) {
		empty = append(empty, clientv3.Compare(clientv3.CreateRevision(w.key), "=", 0))
	}
	return empty
}

// Reads implements [Turn]: the newest two keys of the line, of which the
// key just ahead is the newest one older than ours. (One Txn doing the
// empty-line attempt too, the join in its Else branch, costs more than a
// bare put-if-absent even when the Else is not taken: a bigger request
// through consensus.)
func (First) Reads(w *Waiter) []clientv3.Op {
	top2 := append(clientv3.WithLastCreate(), clientv3.WithLimit(2), clientv3.WithKeysOnly())
	return []clientv3.Op{clientv3.OpGet(w.prefix, top2...)}
}

// Wait implements [Turn]: it waits for the deletion of the key just ahead,
// one at a time, re-checking the line after each.
func (f First) Wait(ctx context.Context, w *Waiter, resp *clientv3.TxnResponse) error {
	pred, readRev := (*mvccpb.KeyValue)(nil), resp.Header.Revision
	// Newest first: the first key older than ours is the one just ahead
	// (ours may lie outside the prefix, so it need not be among them).
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		if kv.CreateRevision < w.rev {
			pred = kv
			break
		}
	}
	var err error
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
