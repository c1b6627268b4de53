package waitq

import (
	"context"
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/lease"
	"github.com/coordkit/coordkit/internal/session"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// WaitRoom waits until the weights of the keys ahead of w in line (under
// its prefix, with a smaller create revision) add up to at most room: the
// admission rule of a weighted, first-come first-served semaphore. ahead is
// what a read at revision readRev returned (keys that are not ahead of w
// are skipped), and weigh gives a key's weight from its value.
//
// The sum is kept locally: one watch on the prefix ([follow.Follower],
// started in sync with the store, deletions only) subtracts the weight of
// each key ahead when it is deleted, so a release costs a waiter no round
// trip; a broken watch is resumed, and a compaction ends in a recount. Nobody joins ahead of w, so the
// sum only shrinks. Once it fits, WaitRoom confirms with a read guarded by
// w's own key, which also recounts; it returns nil only when that read
// shows room, so an expired waiter never gets in. It returns
// [errs.SessionExpired] when w's key went with its lease, [errs.Lost] when
// someone else deleted it or the lease tracker gave up, and ctx.Err() when
// ctx ends. It never deletes w's key.
func (w *Waiter) WaitRoom(ctx context.Context, ahead []*mvccpb.KeyValue, readRev, room int64, weigh func(*mvccpb.KeyValue) int64) error {
	c := counted{w: w, weigh: weigh, room: room}
	c.set(ahead)
	if c.fits() {
		ok, rev, err := c.confirmAgain(ctx)
		if err != nil || ok {
			return err
		}
		readRev = rev
	}
	err := c.follow(ctx, readRev)
	if lerr := w.tracker.Err(); err != nil && lerr != nil {
		return lerr
	}
	return err
}

// follow subtracts the keys ahead as their deletions arrive, until a
// guarded read confirms room or an error.
func (c *counted) follow(ctx context.Context, readRev int64) error {
	w := c.w
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	session.Of(w.session).KeepStream(w.prefix + idleSuffix)
	// The follower's watch starts in sync with the store; if the store
	// moved since readRev, it asks for a read (relist) that closes the gap.
	// Only deletions matter: nobody joins ahead of w.
	f := follow.New(w.client(), w.prefix, readRev, follow.WithPrefix(), follow.WithFilterPut(), follow.Observed(w.obs, w.kind))
	defer f.Close()
	for {
		evs, relist, err := f.Next(bctx)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			key := string(ev.Kv.Key)
			if key == w.key {
				return w.ownKeyGone(ctx)
			}
			if n, found := c.keys[key]; found {
				delete(c.keys, key)
				c.sum -= n
			}
		}
		if !relist && !c.fits() {
			continue
		}
		ok, rev, err := c.confirmAgain(bctx)
		if err != nil || ok {
			return err
		}
		f.Reset(rev)
	}
}

// confirmAgain is confirm, bounded and tried again as [Waiter.Retrying]
// does.
func (c *counted) confirmAgain(ctx context.Context) (ok bool, rev int64, err error) {
	err = c.w.Retrying(ctx, nil, func(ctx context.Context) (err error) {
		ok, rev, err = c.confirm(ctx)
		return err
	})
	return ok, rev, err
}

// counted is a waiter's local view of the weights ahead of it.
type counted struct {
	w     *Waiter
	weigh func(*mvccpb.KeyValue) int64
	room  int64
	keys  map[string]int64 // weight of each key ahead
	sum   int64
}

func (c *counted) fits() bool { return c.sum <= c.room }

func (c *counted) set(kvs []*mvccpb.KeyValue) {
	c.keys, c.sum = make(map[string]int64, len(kvs)), 0
	for _, kv := range kvs {
		if kv.CreateRevision < c.w.rev {
			n := c.weigh(kv)
			c.keys[string(kv.Key)] = n
			c.sum += n
		}
	}
}

// confirm reads the keys ahead in a read guarded by w's own key, recounts,
// and reports whether they leave room, with the read's revision.
func (c *counted) confirm(ctx context.Context) (bool, int64, error) {
	resp, err := c.w.Check(ctx, clientv3.OpGet(c.w.prefix, clientv3.WithPrefix(), clientv3.WithMaxCreateRev(c.w.rev-1)))
	if errors.Is(err, errs.Lost) {
		err = c.w.ownKeyGone(ctx)
	}
	if err != nil {
		return false, 0, err
	}
	c.set(resp.Responses[0].GetResponseRange().Kvs)
	return c.fits(), resp.Header.Revision, nil
}

// ownKeyGone says why w's key was deleted while it waited: its lease ended
// (expired or revoked: [errs.SessionExpired]) or someone deleted the key
// ([errs.Lost]). One probe of the lease tells them apart.
func (w *Waiter) ownKeyGone(ctx context.Context) error {
	if err := w.tracker.Err(); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, CleanupTimeout)
	defer cancel()
	if _, expired, _ := lease.ProbeSession(w.client(), w.session.Lease())(pctx); expired {
		return errs.SessionExpired
	}
	return errs.Lost
}
