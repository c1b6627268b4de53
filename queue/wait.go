package queue

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/coordkit/coordkit/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
				return nil, w.pacer().Pause(ctx)
			case wr.Created:
				w.pacer().Reset()
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
	cancel context.CancelFunc
	ch     clientv3.WatchChan
	pace   *retry.Pacer // spaces out re-opening a broken watch
}

func (w *watch) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.cancel, w.ch = nil, nil
}

// pacer returns the watch's pacer, made on first use.
func (w *watch) pacer() *retry.Pacer {
	if w.pace == nil {
		w.pace = retry.New()
	}
	return w.pace
}
