package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Claim is an item handed to one consumer for reliable processing: it stays
// in the queue, invisible to other consumers, while the claim lasts. Ack
// removes it; Nack, the end of the consumer's session, or the loss of the
// claim makes it visible again, in its original place. Its methods are safe
// for concurrent use.
type Claim struct {
	q    *Queue
	item Item
	hold *waitq.Hold

	// op has room for one token: the goroutine that holds it is acking or
	// nacking.
	op chan struct{}

	mu    sync.Mutex // guards ended
	ended error      // why Ack or Nack ended the claim; nil before
}

// Claim takes the first ready item and holds it under the session given with
// [WithSession], blocking until there is one or ctx is done. It panics if
// the queue has no session.
//
// The item is not removed: a marker on the session's lease hides it from
// other consumers until [Claim.Ack] removes it or [Claim.Nack] releases it.
// If the consumer dies, the marker expires with its lease and the item is
// handed out again: delivery is at least once. An item can therefore be
// processed twice: when a consumer's lease expires (or it is cut off from
// etcd for longer than the lease's TTL) while it still works on the item.
// [Claim.Done] tells the consumer when that happens, so that it can stop,
// and a processing step whose result is stored in etcd can be made
// exactly-once with [Claim.IsOwner].
//
// On failure Claim returns an error that satisfies errors.Is(err,
// ctx.Err()) when ctx ended, or wraps [ErrSessionExpired] or [ErrLost] when
// the session's lease went away, and leaves the queue unchanged.
//
// Claim rides out etcd's transient failures as [Queue.Dequeue] does. If the
// claim's own write fails with its outcome unknown, Claim returns etcd's
// error; a marker it may have left hides the item until the session ends,
// and the item is then handed out again.
func (q *Queue) Claim(ctx context.Context) (*Claim, error) {
	c, err := q.claim(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("queue: claim %q: %w", q.l.prefix, err)
	}
	return c, nil
}

// TryClaim is Claim without waiting: it returns [ErrEmpty] if no item is
// ready, or if every ready item is being taken by another call on the same
// handle.
func (q *Queue) TryClaim(ctx context.Context) (*Claim, error) {
	c, err := q.claim(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("queue: tryclaim %q: %w", q.l.prefix, err)
	}
	return c, nil
}

func (q *Queue) claim(ctx context.Context, wait bool) (*Claim, error) {
	s := q.opts.session
	if s == nil {
		panic("queue: Claim needs a session: create the queue with WithSession")
	}
	// The waiter's key is set once the claim is made; its tracker starts
	// following the lease now, so that it has confirmed the lease by then.
	w := waitq.New(s, q.l.prefix, "")
	w.Observe(q.opts.observer, observe.KindQueue, q.l.prefix)
	start := obs.Now(q.opts.observer)
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	it, rev, err := q.next(bctx, wait, &claimer{w: w, lease: s.Lease(), value: q.opts.value})
	if err != nil {
		err = w.Err(bctx, err)
		obs.Acquired(q.opts.observer, observe.KindQueue, q.l.prefix, start, 0, errors.Is(err, ErrEmpty), err)
		return nil, err
	}
	w.Claimed(q.l.claim+it.Key[len(q.l.ready):], rev)
	// A claim must not be reported before the lease is confirmed: until
	// then a consumer cut off from etcd could not tell that it lost it.
	if err := w.AwaitLease(bctx); err != nil {
		w.Leave(ctx)
		err = w.Err(bctx, err)
		obs.Acquired(q.opts.observer, observe.KindQueue, q.l.prefix, start, 0, false, err)
		return nil, err
	}
	obs.Acquired(q.opts.observer, observe.KindQueue, q.l.prefix, start, rev, false, nil)
	return &Claim{q: q, item: it, hold: waitq.NewHold(w), op: make(chan struct{}, 1)}, nil
}

// Item returns the claimed item.
func (c *Claim) Item() Item { return c.item }

// Ack removes the item from the queue for good, if the claim still holds.
// It returns nil when the item was removed while this claim held it: no
// other consumer was given it. It returns an error wrapping [ErrLost] or
// [ErrSessionExpired] if the claim had ended, in which case the item may
// have been, or will be, handed to another consumer; and [ErrNotClaimed]
// after an Ack or Nack. If it returns any other error (ctx ended, etcd
// unreachable) the outcome is unknown and Ack may be called again.
func (c *Claim) Ack(ctx context.Context) error {
	return c.end(ctx, "ack", clientv3.OpDelete(c.item.Key), clientv3.OpDelete(c.hold.Waiter().Key()))
}

// Nack releases the item: it becomes visible to other consumers again, in
// its original place in the queue. Errors are as for [Claim.Ack]; a claim
// that was lost needs no Nack.
func (c *Claim) Nack(ctx context.Context) error {
	return c.end(ctx, "nack", clientv3.OpDelete(c.hold.Waiter().Key()))
}

func (c *Claim) end(ctx context.Context, op string, ops ...clientv3.Op) error {
	select {
	case c.op <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("queue: %s %s: %w", op, c.item.Key, ctx.Err())
	}
	defer func() { <-c.op }()
	c.mu.Lock()
	done := c.ended != nil
	c.mu.Unlock()
	if done {
		return fmt.Errorf("queue: %s %s: %w", op, c.item.Key, ErrNotClaimed)
	}
	undo := c.hold.Releasing()
	resp, err := c.q.cli.Txn(ctx).If(c.hold.Waiter().IsOwner()).Then(ops...).Commit()
	if err != nil {
		undo()
		return fmt.Errorf("queue: %s %s: outcome unknown: %w", op, c.item.Key, err)
	}
	ended := ErrNotClaimed
	var lost error
	if !resp.Succeeded {
		// The marker was gone: the lease ended or someone deleted it.
		ended = c.hold.Err()
		if !errors.Is(ended, ErrSessionExpired) {
			ended = ErrLost
		}
		lost = ended
	}
	c.hold.Report(lost, nil)
	c.hold.End(ended)
	c.mu.Lock()
	c.ended = ended
	c.mu.Unlock()
	if ended != ErrNotClaimed {
		return fmt.Errorf("queue: %s %s: claim had ended: %w", op, c.item.Key, ended)
	}
	return nil
}

// Done returns a channel that is closed when the claim ends for any reason:
// Ack, Nack, lease expired or revoked, marker deleted, session closed, or
// the lease's local deadline passed. The Claim closes the channel; callers
// only receive from it. The first call starts watching the claim's marker.
func (c *Claim) Done() <-chan struct{} { return c.hold.Done() }

// Context returns a context derived from parent that is cancelled when the
// claim ends, as [Claim.Done] is closed, with why as its [context.Cause]:
// [ErrNotClaimed] after Ack or Nack, an error wrapping [ErrLost] or
// [ErrSessionExpired] on loss. Give it to the processing of the item.
func (c *Claim) Context(parent context.Context) context.Context {
	return c.hold.Context(parent)
}

// Err returns nil while the claim holds, [ErrNotClaimed] after Ack or
// Nack, and an error wrapping [ErrLost] or [ErrSessionExpired] once the
// claim has been lost. Lease loss is seen at once; a marker deleted by
// someone else is seen once [Claim.Done] has been called.
func (c *Claim) Err() error {
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended != nil {
		return ended
	}
	return c.hold.Err()
}

// IsOwner returns a comparison that is true while the claim holds: add it
// to a transaction that stores the result of processing the item, together
// with the deletes that [Claim.Ack] does (the item's key and
// [Claim.Marker]), to make processing and acknowledgement one atomic,
// exactly-once step.
func (c *Claim) IsOwner() clientv3.Cmp { return c.hold.Waiter().IsOwner() }

// Marker returns the key of the claim's marker.
func (c *Claim) Marker() string { return c.hold.Waiter().Key() }
