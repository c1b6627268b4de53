package barrier

import (
	"context"
	"fmt"

	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Leave deletes the participant's key and blocks until every participant
// let in with it has left (or its key has gone with its lease), or ctx is
// done; the last to see the round empty removes the ready marker, which
// opens the barrier for the next round. A participant that crashed after
// it was let in does not hold the others up: its key goes with its lease.
// It returns [ErrNotEntered] if the handle is not in. If ctx ends, the
// participant has left all the same and Leave returns an error that
// satisfies errors.Is(err, ctx.Err()). Leave rides out etcd's transient
// failures (between leaders, without a quorum) while ctx lasts.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	select {
	case b.op <- struct{}{}:
	default:
		// An Enter through this handle is in progress: wait for it.
		select {
		case b.op <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("barrier: leave %q: %w", b.prefix, ctx.Err())
		}
	}
	defer func() { <-b.op }()
	b.mu.Lock()
	w, cutoff, readyRev := b.w, b.cutoff, b.readyRev
	b.mu.Unlock()
	if w == nil {
		return fmt.Errorf("barrier: leave %q: %w", b.prefix, ErrNotEntered)
	}
	if err := b.leave(ctx, w, cutoff, readyRev); err != nil {
		return fmt.Errorf("barrier: leave %q: %w", b.prefix, err)
	}
	return nil
}

func (b *DoubleBarrier) leave(ctx context.Context, w *waitq.Waiter, cutoff, readyRev int64) error {
	cli := b.s.Client()
	inside := []clientv3.Op{
		clientv3.OpGet(b.ready),
		clientv3.OpGet(b.waiters, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMaxCreateRev(cutoff)),
	}
	// The delete is guarded by the key's create revision: the participant
	// reuses its key on its next Enter, and a delete that reached etcd late
	// must not remove that one.
	del := clientv3.OpTxn([]clientv3.Cmp{w.IsOwner()}, []clientv3.Op{clientv3.OpDelete(w.Key())}, nil)
	// Sent again after a transient error: a delete that was applied the
	// first time does nothing the second.
	var resp *clientv3.TxnResponse
	err := retry.Do(ctx, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).Then(append([]clientv3.Op{del}, inside...)...).Commit()
		return err
	})
	if err != nil {
		// The delete may not have happened: try again, detached and
		// bounded; failing that, the key goes with the lease.
		w.Leave(ctx)
		b.out()
		return err
	}
	b.out()
	w.Linger() // a retried Join of the key may still land
	f := follow.New(cli, b.prefix, resp.Header.Revision, follow.WithPrefix(), follow.Observed(b.opts.observer, observe.KindBarrier))
	defer f.Close()
	rs := gets(resp, 1)
	for {
		if len(rs[0].Kvs) == 0 || rs[0].Kvs[0].CreateRevision != readyRev {
			return nil // the round is over: someone saw it empty
		}
		left := map[string]bool{}
		for _, kv := range rs[1].Kvs {
			left[string(kv.Key)] = true
		}
		f.Reset(resp.Header.Revision)
		for len(left) > 0 {
			evs, relist, err := f.Next(ctx)
			if err != nil {
				return err
			}
			if relist {
				break
			}
			for _, ev := range evs {
				key := string(ev.Kv.Key)
				switch {
				case key == b.ready:
					return nil // removed (or replaced): the round is over
				case ev.Type == mvccpb.DELETE:
					delete(left, key)
				}
			}
		}
		if len(left) == 0 {
			// Everyone let in with us has left: close the round, unless
			// someone else did.
			// Guarded by the marker's create revision: sent again, it
			// cannot remove the next round's marker.
			return retry.Do(ctx, func(ctx context.Context) error {
				_, err := cli.Txn(ctx).
					If(clientv3.Compare(clientv3.CreateRevision(b.ready), "=", readyRev)).
					Then(clientv3.OpDelete(b.ready)).
					Commit()
				return err
			})
		}
		err := retry.Do(ctx, func(ctx context.Context) (err error) {
			resp, err = cli.Txn(ctx).Then(inside...).Commit()
			return err
		})
		if err != nil {
			return err
		}
		rs = gets(resp, 0)
	}
}

// out forgets the participant's key.
func (b *DoubleBarrier) out() {
	b.mu.Lock()
	b.w = nil
	b.mu.Unlock()
}
