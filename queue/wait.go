package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/observe"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// await waits until v has something to take, following the queue from v's
// revision on and reading again where the follower cannot tell (it started
// after v was read, a compaction, or an item v does not know became visible
// again). If this handle has been losing races, it holds back before it
// returns (see holdoff), so that it usually sees the items taken by the
// consumers that were first instead of racing them; v may then have items
// already. It returns nil (and no error) when a delayed item fell due and
// the caller must read again. *fp is the follower that one call of next
// keeps across its waits; await makes it on first use.
func (q *Queue) await(ctx context.Context, fp **follow.Follower, v *view, cl *claimer) (*view, error) {
	f := *fp
	switch {
	case f == nil:
		f = follow.New(q.cli, q.l.prefix, v.rev, follow.WithPrefix(), follow.Observed(q.opts.observer, observe.KindQueue))
		*fp = f
	case v.rev < f.Rev():
		// v misses changes that were followed past: read the present.
		nv, err := q.read(ctx)
		if err != nil {
			return nil, err
		}
		v = nv
	}
	f.Reset(v.rev)
	var held time.Time // when holding back ends
	for {
		// Something to take: take it, or hold back first.
		if held.IsZero() && q.hasCandidate(v) {
			d := q.holdoff()
			if d <= 0 {
				return v, nil
			}
			held = time.Now().Add(d)
		}
		var due time.Time
		if nb, ok := v.earliest(q); ok {
			if time.Until(nb) <= 0 {
				return nil, nil
			}
			due = nb
		}
		evs, relist, err := q.follow(ctx, f, due, held)
		switch {
		case errors.Is(err, errWake):
			if !due.IsZero() && !time.Now().Before(due) {
				return nil, nil
			}
			if !held.IsZero() && !time.Now().Before(held) {
				if q.hasCandidate(v) {
					return v, nil
				}
				held = time.Time{}
			}
			continue
		case err != nil:
			if cl != nil {
				if lerr := cl.w.Tracker().Err(); lerr != nil {
					return nil, lerr
				}
			}
			return nil, err
		}
		if relist || q.apply(v, evs) {
			nv, err := q.read(ctx)
			if err != nil {
				return nil, err
			}
			v = nv
			f.Reset(v.rev)
		}
	}
}

// errWake is what follow returns when one of its wake-up times came.
var errWake = errors.New("queue: wake up")

// follow returns the queue's next changes, or errWake at the earlier of
// due and held (each ignored if zero).
func (q *Queue) follow(ctx context.Context, f *follow.Follower, due, held time.Time) ([]*clientv3.Event, bool, error) {
	wake := due
	if wake.IsZero() || (!held.IsZero() && held.Before(wake)) {
		wake = held
	}
	if wake.IsZero() {
		return f.Next(ctx)
	}
	wctx, cancel := context.WithDeadline(ctx, wake)
	defer cancel()
	evs, relist, err := f.Next(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, false, errWake
	}
	return evs, relist, err
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
