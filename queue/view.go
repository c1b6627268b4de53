package queue

import (
	"context"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// view is what a consumer knows of the head of the queue as of revision
// rev: every ready key from the start of its window up to its end, which of
// them are claimed, and the first delayed keys. Outside a call, a view is
// kept for the next call as a first guess; it is then stale, and a take
// from it is guarded so that it commits only if nothing it could not see
// has come before the item taken.
type view struct {
	rev     int64
	items   []*mvccpb.KeyValue // known ready keys in key order (no values)
	claims  map[string]int64   // claimed suffixes → their markers' create revisions
	delayed []*mvccpb.KeyValue // the first delayed keys, in due order
	// paged is set when the window does not start at the beginning of the
	// ready directory: every key before it was claimed when read.
	paged bool
	fresh bool // read or updated during the current call
}

func (v *view) clone() *view {
	c := *v
	c.items = slices.Clone(v.items)
	c.delayed = slices.Clone(v.delayed)
	c.claims = make(map[string]int64, len(v.claims))
	for k, r := range v.claims {
		c.claims[k] = r
	}
	return &c
}

// maxLimit bounds the keys read at once.
const maxLimit = 1024

// readOps reads a window of the queue's head starting at suffix from, at
// revision rev (0: the current one).
func (q *Queue) readOps(from string, rev int64) []clientv3.Op {
	q.mu.Lock()
	limit := int64(q.opts.batch) + min(q.claims, maxLimit)
	q.mu.Unlock()
	ops := []clientv3.Op{
		clientv3.OpGet(q.l.ready+from, clientv3.WithRange(q.l.readyEnd), clientv3.WithKeysOnly(),
			clientv3.WithLimit(limit), clientv3.WithRev(rev)),
		clientv3.OpGet(q.l.claim+from, clientv3.WithRange(q.l.claimEnd), clientv3.WithKeysOnly(),
			clientv3.WithLimit(limit), clientv3.WithRev(rev)),
	}
	if from == "" {
		ops = append(ops, clientv3.OpGet(q.l.delayed, clientv3.WithRange(q.l.delayedEnd), clientv3.WithKeysOnly(),
			clientv3.WithLimit(int64(q.opts.batch)), clientv3.WithRev(rev)))
	}
	return ops
}

// parse builds a view from the responses to readOps. It reports whether
// the window was cut short (more keys exist past it) and the last suffix
// it covers.
func (q *Queue) parse(rev int64, rs []*clientv3.GetResponse) (v *view, more bool, last string) {
	v = &view{rev: rev, claims: map[string]int64{}, fresh: true}
	ready, claims := rs[0], rs[1]
	if ready.More && len(ready.Kvs) > 0 {
		last = string(ready.Kvs[len(ready.Kvs)-1].Key[len(q.l.ready):])
	}
	if claims.More && len(claims.Kvs) > 0 {
		if c := string(claims.Kvs[len(claims.Kvs)-1].Key[len(q.l.claim):]); last == "" || c < last {
			last = c
		}
	}
	more = ready.More || claims.More
	for _, kv := range ready.Kvs {
		if more && string(kv.Key[len(q.l.ready):]) > last {
			break
		}
		v.items = append(v.items, kv)
	}
	for _, kv := range claims.Kvs {
		if sfx := string(kv.Key[len(q.l.claim):]); !more || sfx <= last {
			v.claims[sfx] = kv.CreateRevision
		}
	}
	if len(rs) > 2 {
		v.delayed = rs[2].Kvs
	}
	q.mu.Lock()
	q.claims = claims.Count
	q.mu.Unlock()
	return v, more, last
}

// read reads the head of the queue: a window from the start of the ready
// directory, and further windows at the same revision while a window holds
// only claimed items.
func (q *Queue) read(ctx context.Context) (*view, error) {
	resp, err := q.cli.Txn(ctx).Then(q.readOps("", 0)...).Commit()
	if err != nil {
		return nil, err
	}
	return q.finish(ctx, resp.Header.Revision, gets(resp, 0))
}

// finish turns the first window's responses into a view, reading on past
// windows that hold nothing to take.
func (q *Queue) finish(ctx context.Context, rev int64, rs []*clientv3.GetResponse) (*view, error) {
	v, more, last := q.parse(rev, rs)
	delayed := v.delayed
	for more && !q.hasCandidate(v) {
		resp, err := q.cli.Txn(ctx).Then(q.readOps(last+"\x00", rev)...).Commit()
		if err != nil {
			return nil, err
		}
		v, more, last = q.parse(rev, gets(resp, 0))
		v.delayed, v.paged = delayed, true
	}
	return v, nil
}

// gets returns the range responses of a Txn response from index i on.
func gets(resp *clientv3.TxnResponse, i int) []*clientv3.GetResponse {
	var out []*clientv3.GetResponse
	for _, r := range resp.Responses[i:] {
		out = append(out, (*clientv3.GetResponse)(r.GetResponseRange()))
	}
	return out
}

// due reports whether the first delayed item known is due at now.
func (v *view) due(q *Queue, now time.Time) bool {
	if len(v.delayed) == 0 {
		return false
	}
	nb, _, ok := q.l.parseDelayed(string(v.delayed[0].Key))
	return ok && !nb.After(now)
}

// earliest returns when the first delayed item known is due.
func (v *view) earliest(q *Queue) (time.Time, bool) {
	if len(v.delayed) == 0 {
		return time.Time{}, false
	}
	nb, _, ok := q.l.parseDelayed(string(v.delayed[0].Key))
	return nb, ok
}

// candidates returns the items of v that may be taken: not claimed, not
// being taken by another goroutine of this handle. Callers hold q.mu.
func (q *Queue) candidates(v *view) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, kv := range v.items {
		if v.claims[string(kv.Key[len(q.l.ready):])] == 0 && !q.inflight[string(kv.Key)] {
			out = append(out, kv)
		}
	}
	return out
}

func (q *Queue) hasCandidate(v *view) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.candidates(v)) > 0
}

// apply brings v up to date with watch events. It reports whether v can no
// longer be trusted (an item it does not know became visible again) and must
// be read afresh.
func (q *Queue) apply(v *view, evs []*clientv3.Event) (stale bool) {
	var revived []string
	removed := map[string]bool{}
	base := v.rev
	for _, ev := range evs {
		if ev.Kv.ModRevision <= base {
			continue // already in the view
		}
		key := string(ev.Kv.Key)
		put := ev.Type == mvccpb.PUT
		switch {
		case strings.HasPrefix(key, q.l.ready):
			i, found := slices.BinarySearchFunc(v.items, key, func(kv *mvccpb.KeyValue, k string) int {
				return strings.Compare(string(kv.Key), k)
			})
			switch {
			case put && found:
				v.items[i] = ev.Kv
			case put:
				v.items = slices.Insert(v.items, i, ev.Kv)
			case found:
				v.items = slices.Delete(v.items, i, i+1)
				removed[key[len(q.l.ready):]] = true
			default:
				removed[key[len(q.l.ready):]] = true
			}
		case strings.HasPrefix(key, q.l.claim):
			sfx := key[len(q.l.claim):]
			if put {
				v.claims[sfx] = ev.Kv.CreateRevision
			} else {
				delete(v.claims, sfx)
				revived = append(revived, sfx)
			}
		case strings.HasPrefix(key, q.l.delayed):
			i, found := slices.BinarySearchFunc(v.delayed, key, func(kv *mvccpb.KeyValue, k string) int {
				return strings.Compare(string(kv.Key), k)
			})
			switch {
			case put && !found:
				v.delayed = slices.Insert(v.delayed, i, ev.Kv)
			case !put && found:
				v.delayed = slices.Delete(v.delayed, i, i+1)
			}
		}
		v.rev = max(v.rev, ev.Kv.ModRevision)
	}
	v.fresh = true
	for _, sfx := range revived {
		if removed[sfx] {
			continue // acknowledged: marker and item went together
		}
		if _, found := slices.BinarySearchFunc(v.items, q.l.ready+sfx, func(kv *mvccpb.KeyValue, k string) int {
			return strings.Compare(string(kv.Key), k)
		}); !found {
			return true
		}
	}
	return false
}
