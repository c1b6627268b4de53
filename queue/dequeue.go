package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

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
	var w watch
	defer w.stop()
	v := q.cached()
	for {
		if err := ctx.Err(); err != nil {
			return Item{}, 0, err
		}
		if cl != nil {
			if err := cl.w.Tracker.Err(); err != nil {
				return Item{}, 0, err
			}
		}
		now := time.Now()
		var err error
		if v == nil {
			if v, err = q.read(ctx); err != nil {
				return Item{}, 0, err
			}
		}
		if v.due(q, now) {
			if err := q.promote(ctx, now); err != nil {
				return Item{}, 0, err
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
				if v, err = q.await(ctx, &w, v, cl); err != nil {
					return Item{}, 0, err
				}
			}
			continue
		}
		t, err := q.take(ctx, v, c, exact, now, cl)
		q.release(c, t.ok)
		if err != nil {
			return Item{}, 0, err
		}
		if t.ok {
			q.keep(t.view)
			return t.item, t.rev, nil
		}
		v = t.view
		if wait && t.lost && q.few(v) {
			// Others want the few items left as much as we do: let the
			// one that got there first have them.
			if v, err = q.await(ctx, &w, v, cl); err != nil {
				return Item{}, 0, err
			}
		}
	}
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
	ok   bool
	lost bool // the item was taken by someone else
	item Item
	rev  int64 // the claim marker's create revision
	view *view // the queue's head as of the take
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
		return took{}, err
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

// await waits until v has something to take, following the queue through
// a watch and reading again where the watch cannot tell (it started after
// v was read, or an item v does not know became visible again). If this
// handle has been losing races, it holds back before it returns (see
// holdoff), so that it usually sees the items taken by the consumers that
// were first instead of racing them; v may then have items already. It
// returns nil (and no error) when the caller must read again: the watch
// broke, or a delayed item fell due.
func (q *Queue) await(ctx context.Context, w *watch, v *view, cl *claimer) (*view, error) {
	var lost <-chan struct{}
	if cl != nil {
		lost = cl.w.Tracker.Lost()
	}
	var timer, holdTimer *time.Timer
	var held <-chan time.Time // fires when holding back ends
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if holdTimer != nil {
			holdTimer.Stop()
		}
	}()
	for {
		// Something to take: take it, or hold back first.
		if held == nil && q.hasCandidate(v) {
			d := q.holdoff()
			if d <= 0 {
				return v, nil
			}
			holdTimer = time.NewTimer(d)
			held = holdTimer.C
		}
		var due <-chan time.Time
		if nb, ok := v.earliest(q); ok {
			d := time.Until(nb)
			if d <= 0 {
				return nil, nil
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			due = timer.C
		}
		if w.ch == nil {
			// No start revision: the watch starts at the current revision,
			// in sync, so a new item is seen as soon as it commits. The
			// created response tells whether the queue moved since v.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			w.cancel = cancel
			w.ch = q.cli.Watch(wctx, q.l.prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-lost:
			return nil, cl.w.Tracker.Err()
		case <-due:
			return nil, nil
		case <-held:
			if q.hasCandidate(v) {
				return v, nil
			}
			held = nil
		case wr, ok := <-w.ch:
			stale := false
			switch {
			case !ok || wr.Err() != nil || wr.Canceled:
				// Compacted, no leader, closed: never taken as news. Back
				// off, then read again and watch anew.
				w.stop()
				return nil, w.pause(ctx)
			case wr.Created:
				w.failures = 0
				// Whatever changed between v and the watch's start, a read
				// now (after the watch started) sees it.
				stale = wr.Header.Revision > v.rev
			default:
				stale = q.apply(v, wr.Events)
			}
			if stale {
				nv, err := q.read(ctx)
				if err != nil {
					return nil, err
				}
				v = nv
			}
		}
	}
}

// maxLosses caps the count of lost races that holding back grows with.
const maxLosses = 4

// holdoff is how long a waiting consumer holds back before it tries an item
// that has just arrived: nothing if it won its last race, otherwise about
// one take's duration per race lost in a row (jittered, at most 50 ms).
// Waiting consumers all see every new item; the one that won last goes
// first, and the others usually see the item taken before they try, so an
// idle pool makes about one attempt per item instead of one per consumer.
func (q *Queue) holdoff() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.losses == 0 {
		return 0
	}
	d := time.Duration(float64(q.rtt) * float64(q.losses) * (0.5 + rand.Float64()))
	return min(d, 50*time.Millisecond)
}

// watch is the one watch a waiting call keeps on the queue's prefix.
type watch struct {
	cancel   context.CancelFunc
	ch       clientv3.WatchChan
	failures int // consecutive broken watches, for backing off
}

func (w *watch) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.cancel, w.ch = nil, nil
}

// pause backs off after a broken watch, so a failing member is not
// hammered: 10 ms doubling up to 1 s.
func (w *watch) pause(ctx context.Context) error {
	d := min(10*time.Millisecond<<min(w.failures, 7), time.Second)
	w.failures++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
