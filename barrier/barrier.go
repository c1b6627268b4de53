package barrier

import (
	"context"
	"fmt"

	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Barrier is a single barrier: while it is held, [Barrier.Wait] blocks;
// [Barrier.Release] lets every waiter through. Its methods are safe for
// concurrent use, and any number of handles, on any clients, may act on the
// same name.
type Barrier struct {
	cli  *clientv3.Client
	key  string
	opts options
}

// New returns the barrier on name, which talks to etcd through cli. The
// barrier's key is "<name>/hold". New does no I/O. It panics if cli is nil
// or name is empty or "/".
func New(cli *clientv3.Client, name string, opts ...Option) *Barrier {
	if cli == nil {
		panic("barrier: nil client")
	}
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Barrier{cli: cli, key: waitq.Prefix("barrier", name) + "hold", opts: o}
}

// Key returns the barrier's key: present while the barrier is held.
func (b *Barrier) Key() string { return b.key }

// Hold closes the barrier: Wait blocks until Release. Holding a barrier
// that is held already does nothing. With [WithSession] the hold ends when
// the session does.
func (b *Barrier) Hold(ctx context.Context) error {
	var opts []clientv3.OpOption
	if b.opts.session != nil {
		opts = append(opts, clientv3.WithLease(b.opts.session.Lease()))
	}
	_, err := b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(b.key), "=", 0)).
		Then(clientv3.OpPut(b.key, b.opts.value, opts...)).
		Commit()
	if err != nil {
		return fmt.Errorf("barrier: hold %q: %w", b.key, err)
	}
	return nil
}

// Release opens the barrier, letting every waiter through. Releasing a
// barrier that is not held does nothing.
func (b *Barrier) Release(ctx context.Context) error {
	if _, err := b.cli.Delete(ctx, b.key); err != nil {
		return fmt.Errorf("barrier: release %q: %w", b.key, err)
	}
	return nil
}

// Wait blocks until the barrier is not held, and returns nil at once if it
// is not held now. It returns only when it has seen the barrier's key
// absent or deleted, or with an error: one that satisfies errors.Is(err,
// ctx.Err()) when ctx ends, etcd's refusal when the user may not read the
// key, or an error when the client is closed; etcd's transient errors are
// retried (see the package's table). A watch that breaks
// (compaction, leader loss, a closed channel) is re-established, never
// taken as a release. A waiter whose watch is broken while the barrier is
// released and held again at once may miss that release if etcd compacted
// it meanwhile.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := b.wait(ctx); err != nil {
		return fmt.Errorf("barrier: wait %q: %w", b.key, err)
	}
	return nil
}

func (b *Barrier) wait(ctx context.Context) error {
	resp, err := b.read(ctx)
	if err != nil {
		return err
	}
	if resp.Count == 0 {
		return nil
	}
	f := follow.New(b.cli, b.key, resp.Header.Revision, follow.Observed(b.opts.observer, observe.KindBarrier))
	defer f.Close()
	for {
		evs, relist, err := f.Next(ctx)
		if err != nil {
			return err
		}
		if relist {
			if resp, err = b.read(ctx); err != nil {
				return err
			}
			if resp.Count == 0 {
				return nil
			}
			f.Reset(resp.Header.Revision)
			continue
		}
		for _, ev := range evs {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
}

// read reads whether the barrier is held, sending the read again after
// etcd's transient errors (a lost quorum, an overloaded member) for as
// long as ctx lasts: Wait asked to block until the barrier is released.
func (b *Barrier) read(ctx context.Context) (*clientv3.GetResponse, error) {
	var resp *clientv3.GetResponse
	attempt, last := 0, error(nil)
	err := retry.Do(ctx, func(ctx context.Context) (err error) {
		if attempt > 0 {
			obs.Retried(b.opts.observer, observe.KindBarrier, b.key, attempt, last)
		}
		attempt++
		resp, err = b.cli.Get(ctx, b.key, clientv3.WithCountOnly())
		last = err
		return err
	})
	return resp, err
}
