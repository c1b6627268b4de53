package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/waitq"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// claimer is what a claim adds to a take: the marker is written on the
// session's lease.
type claimer struct {
	w     *waitq.Waiter // follows the session's lease
	lease clientv3.LeaseID
	value string
}

// next takes the first ready item, waiting for one if wait is set. With a
// claimer it claims the item instead of deleting it, and also returns the
// claim marker's create revision.
func (q *Queue) next(ctx context.Context, wait bool, cl *claimer) (Item, int64, error) {
	var f *follow.Follower // made by await on first use
	defer func() { f.Close() }()
	var p *retry.Pacer // made by retry on first use
	v := q.cached()
	for {
		if err := ctx.Err(); err != nil {
			return Item{}, 0, err
		}
		if cl != nil {
			if err := cl.w.Tracker().Err(); err != nil {
				return Item{}, 0, err
			}
		}
		now := time.Now()
		var err error
		if v == nil {
			if v, err = q.read(ctx); err != nil {
				if err = q.retry(ctx, &p, cl, err); err != nil {
					return Item{}, 0, err
				}
				continue
			}
			if p != nil {
				p.Reset()
			}
		}
		if v.due(q, now) {
			if err := q.promote(ctx, now); err != nil {
				if err = q.retry(ctx, &p, cl, err); err != nil {
					return Item{}, 0, err
				}
			}
			v = nil
			continue
		}
		c, exact := q.pick(v)
		if c == nil {
			switch {
			case !wait && !v.fresh:
				// A stale view proves nothing: look again.
				v = nil
			case !wait:
				return Item{}, 0, ErrEmpty
			default:
				// Waiting on a stale view starts the watch first and reads
				// only if the store moved since the view: the read then
				// comes after the watch is established, and no change can
				// fall between the two.
				if v, err = q.await(ctx, &f, v, cl); err != nil {
					if err = q.retry(ctx, &p, cl, err); err != nil {
						return Item{}, 0, err
					}
				}
			}
			continue
		}
		t, err := q.take(ctx, v, c, exact, now, cl)
		q.release(c, t.ok)
		if err != nil {
			if t.unknown {
				// Whether the item was taken is unknown, and the take may
				// still be applied: trying again could take a second
				// item while the first is gone (see Dequeue's doc).
				return Item{}, 0, err
			}
			if err = q.retry(ctx, &p, cl, err); err != nil {
				return Item{}, 0, err
			}
			v = nil
			continue
		}
		if t.ok {
			q.keep(t.view)
			return t.item, t.rev, nil
		}
		v = t.view
		if wait && t.lost && q.few(v) {
			// Others want the few items left as much as we do: let the
			// one that got there first have them.
			if v, err = q.await(ctx, &f, v, cl); err != nil {
				if err = q.retry(ctx, &p, cl, err); err != nil {
					return Item{}, 0, err
				}
			}
		}
	}
}

// retry decides what next does after err from a read, a promotion or a
// wait, none of which takes an item: if err is [errs.Transient], it pauses
// (pacing with *p, made on first use) and returns nil, and the caller reads
// the queue again; it returns err otherwise, or ctx's error, or the
// claimer's lease's, if one ends during the pause.
func (q *Queue) retry(ctx context.Context, p **retry.Pacer, cl *claimer, err error) error {
	if !errs.Transient(err) {
		return err
	}
	if *p == nil {
		*p = retry.New()
	}
	if cl != nil {
		return (*p).PauseOr(ctx, cl.w.Tracker().Lost(), cl.w.Tracker().Err)
	}
	return (*p).Pause(ctx)
}

// cached returns a copy of the handle's last view, stale, or nil.
func (q *Queue) cached() *view {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view == nil {
		return nil
	}
	v := q.view.clone()
	v.fresh = false
	return v
}

// keep stores v for the next call, unless a newer view is stored.
func (q *Queue) keep(v *view) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if v != nil && (q.view == nil || v.rev >= q.view.rev) {
		q.view = v
	}
}

// pick chooses the item to try from v and marks it as being taken by this
// handle. It takes the first candidate, in order, unless this handle
// recently lost races to other consumers: then it takes one at random from
// the first batch, so that competing consumers spread out instead of all
// trying the head. exact reports whether the take must be guarded to keep
// the order exact.
func (q *Queue) pick(v *view) (c *mvccpb.KeyValue, exact bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cs := q.candidates(v)
	if len(cs) == 0 {
		return nil, false
	}
	i, exact := 0, !v.fresh
	if q.contended > 0 {
		i, exact = rand.IntN(min(len(cs), q.opts.batch)), false
	}
	c = cs[i]
	q.inflight[string(c.Key)] = true
	return c, exact
}

// release ends a take of c, and counts down the spreading after a win.
func (q *Queue) release(c *mvccpb.KeyValue, won bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inflight, string(c.Key))
	if won && q.contended > 0 {
		q.contended--
	}
}

// maxGuards bounds the claimed items ahead whose markers a guarded take
// checks (etcd allows 128 comparisons per transaction by default).
const maxGuards = 64

// took is the outcome of a take.
type took struct {
	ok      bool
	lost    bool // the item was taken by someone else
	unknown bool // the take failed with its outcome unknown
	item    Item
	rev     int64 // the claim marker's create revision
	view    *view // the queue's head as of the take
}

// take tries to delete (or claim) c in one transaction that also reads the
// queue's head again, whatever the outcome. The delete is guarded by c's mod
// revision and the absence of a claim marker, so only one consumer can take
// an item. When exact is set (v is from an earlier call) it is also guarded
// by "nothing came before c since v was read": no ready key ahead of c
// created since, no claim ahead of c released since, no delayed item created
// since that is due now.
//
// The transaction runs on a context detached from ctx, bounded by
// waitq.CleanupTimeout, so that a take in flight when ctx ends still learns
// whether it took the item, rather than dropping it.
func (q *Queue) take(ctx context.Context, v *view, c *mvccpb.KeyValue, exact bool, now time.Time, cl *claimer) (took, error) {
	key := string(c.Key)
	sfx := key[len(q.l.ready):]
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(key), "=", c.ModRevision),
		clientv3.Compare(clientv3.CreateRevision(q.l.claim+sfx), "=", 0),
	}
	if exact {
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(q.l.ready), "<", v.rev+1).WithRange(key),
			clientv3.Compare(clientv3.ModRevision(q.l.delayed), "<", v.rev+1).WithRange(q.l.dueEnd(now)))
		guards := 0
		for _, kv := range v.items {
			if string(kv.Key) >= key || guards == maxGuards {
				break
			}
			s := string(kv.Key[len(q.l.ready):])
			if r := v.claims[s]; r != 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(q.l.claim+s), "=", r))
				guards++
			}
		}
	}
	then := []clientv3.Op{clientv3.OpDelete(key, clientv3.WithPrevKV())}
	if cl != nil {
		then = []clientv3.Op{clientv3.OpPut(q.l.claim+sfx, cl.value, clientv3.WithLease(cl.lease)), clientv3.OpGet(key)}
	}
	reads := q.readOps("", 0)
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitq.CleanupTimeout)
	defer cancel()
	t0 := time.Now()
	resp, err := q.cli.Txn(tctx).If(cmps...).Then(append(then, reads...)...).Else(reads...).Commit()
	if err != nil {
		return took{unknown: true}, err
	}
	q.mu.Lock()
	q.rtt += (time.Since(t0) - q.rtt) / 4
	if resp.Succeeded {
		q.losses = 0
	}
	q.mu.Unlock()
	if !resp.Succeeded {
		t := took{}
		if t.view, err = q.finish(ctx, resp.Header.Revision, gets(resp, 0)); err != nil {
			return took{}, err
		}
		if !q.has(t.view, key) {
			// Someone else took it: with a fresh view that is a race lost,
			// with a stale one merely a guess that came late.
			t.lost = true
			if v.fresh {
				q.mu.Lock()
				q.contended = q.opts.batch // spread for a while
				q.losses = min(q.losses+1, maxLosses)
				q.mu.Unlock()
			}
		}
		return t, nil
	}
	var val []byte
	if cl == nil {
		prev := resp.Responses[0].GetResponseDeleteRange().PrevKvs
		if len(prev) == 0 {
			return took{}, fmt.Errorf("item %s vanished while taken", key)
		}
		val = prev[0].Value
	} else {
		kvs := resp.Responses[1].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return took{}, fmt.Errorf("item %s vanished while claimed", key)
		}
		val = kvs[0].Value
	}
	// Only the first window: a view that needs paging is read afresh by
	// the next call, and the item must be returned whatever ctx says now.
	nv, _, _ := q.parse(resp.Header.Revision, gets(resp, len(then)))
	return took{ok: true, item: Item{Key: key, Value: val, Priority: priorityOf(sfx)}, rev: resp.Header.Revision, view: nv}, nil
}

// few reports whether v holds too few items for the consumers that are
// racing this handle for them: no more than the races it lost in a row.
func (q *Queue) few(v *view) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.candidates(v)) <= q.losses
}

// has reports whether key is in v and not claimed.
func (q *Queue) has(v *view, key string) bool {
	for _, kv := range v.items {
		if string(kv.Key) == key {
			return v.claims[key[len(q.l.ready):]] == 0
		}
	}
	return false
}

// promote moves the delayed items that are due at now (up to a batch) to
// the ready directory, keeping their place in line. If another consumer
// promotes them first, the transaction does nothing.
func (q *Queue) promote(ctx context.Context, now time.Time) error {
	resp, err := q.cli.Get(ctx, q.l.delayed, clientv3.WithRange(q.l.dueEnd(now)), clientv3.WithLimit(int64(q.opts.batch)))
	if err != nil {
		return err
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		_, sfx, ok := q.l.parseDelayed(string(kv.Key))
		if !ok {
			continue
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
		ops = append(ops, clientv3.OpDelete(string(kv.Key)), clientv3.OpPut(q.l.ready+sfx, string(kv.Value)))
	}
	if len(ops) == 0 {
		return nil
	}
	_, err = q.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	return err
}
