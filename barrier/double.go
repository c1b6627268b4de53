package barrier

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DoubleBarrier is one participant in a double barrier for count
// participants: [DoubleBarrier.Enter] returns once count participants have
// entered, and [DoubleBarrier.Leave] once all of them have left. One handle
// is one participant; two handles on one session are two participants. Its
// methods are safe for concurrent use, but a second Enter on a handle that
// is in (or entering) returns [ErrEntered].
type DoubleBarrier struct {
	s       *concurrency.Session
	prefix  string // "<name>/"
	waiters string // "<name>/waiters/": one key per participant
	ready   string // "<name>/ready": present once a round is full
	count   int
	key     string
	opts    options

	// op has room for one token: the goroutine that holds it is entering
	// or leaving through this handle.
	op chan struct{}

	mu       sync.Mutex    // guards w, cutoff, readyRev, key
	w        *waitq.Waiter // the participant's key while entered, nil otherwise
	cutoff   int64         // create revision of the last participant let in
	readyRev int64         // create revision of the round's ready marker
}

// NewDouble returns a participant in the double barrier on name for count
// participants, whose key lives on session s's lease. The session is
// borrowed: the caller creates it and closes it, which removes the
// participant. NewDouble does no I/O. It panics if s is nil, name is empty
// or "/", count < 1, or [WithSession] is given (the session is s).
func NewDouble(s *concurrency.Session, name string, count int, opts ...Option) *DoubleBarrier {
	if s == nil {
		panic("barrier: nil session")
	}
	if count < 1 {
		panic(fmt.Sprintf("barrier: count %d < 1", count))
	}
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.session != nil {
		panic("barrier: NewDouble does not take WithSession: a participant's key lives on the session given to NewDouble")
	}
	prefix := waitq.Prefix("barrier", name)
	waiters := prefix + "waiters/"
	return &DoubleBarrier{
		s:       s,
		prefix:  prefix,
		waiters: waiters,
		ready:   prefix + "ready",
		count:   count,
		key:     waitq.Key(waiters, s),
		opts:    o,
		op:      make(chan struct{}, 1),
	}
}

// Key returns the participant's key (present while entering or entered).
func (b *DoubleBarrier) Key() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.key
}

// round is what a participant knows of the barrier at a revision.
type round struct {
	members  map[string]int64 // participant key → create revision
	ready    bool
	cutoff   int64 // from the ready marker
	readyRev int64 // the ready marker's create revision
}

func (b *DoubleBarrier) readOps() []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpGet(b.ready),
		clientv3.OpGet(b.waiters, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	}
}

// load sets r from the responses to readOps.
func (r *round) load(ready, waiters *clientv3.GetResponse) {
	r.members = map[string]int64{}
	for _, kv := range waiters.Kvs {
		r.members[string(kv.Key)] = kv.CreateRevision
	}
	r.ready = false
	if len(ready.Kvs) > 0 {
		r.setReady(ready.Kvs[0])
	}
}

func (r *round) setReady(kv *mvccpb.KeyValue) {
	c, err := strconv.ParseInt(string(kv.Value), 10, 64)
	r.ready, r.cutoff, r.readyRev = err == nil, c, kv.CreateRevision
}

// first returns the keys and create revisions of the first n participants
// in order of arrival.
func (r *round) first(n int) ([]string, []int64) {
	keys := make([]string, 0, len(r.members))
	for k := range r.members {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(r.members[a], r.members[b]) })
	keys = keys[:min(n, len(keys))]
	revs := make([]int64, len(keys))
	for i, k := range keys {
		revs[i] = r.members[k]
	}
	return keys, revs
}

// maxGuarded bounds the participants whose presence the ready marker's
// transaction checks (etcd allows 128 comparisons per transaction).
const maxGuarded = 100

// Enter joins the barrier and blocks until count participants have
// entered, or ctx is done, riding out etcd's transient faults.
// Participants are let in by order of arrival
// (their keys' create revisions): when count are present, the first count
// pass together and a ready marker records it, so a participant that looks
// late still knows it was let in. One that arrives while a full round is
// still inside waits for that round to leave and counts towards the next.
//
// A participant whose lease expires (it crashed) is removed with its key.
// If it had not been let in yet, the others wait for another to take its
// place: Enter may then never return, so bound it with ctx. Enter fails
// with ctx's error, or with [ErrSessionExpired] or [ErrLost] if the lease
// or the key went away, and leaves no key behind (see Cleanup in
// [github.com/coordkit/coordkit]).
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	select {
	case b.op <- struct{}{}:
	default:
		return fmt.Errorf("barrier: enter %q: %w", b.prefix, ErrEntered)
	}
	defer func() { <-b.op }()
	b.mu.Lock()
	entered := b.w != nil
	b.mu.Unlock()
	if entered {
		return fmt.Errorf("barrier: enter %q: %w", b.prefix, ErrEntered)
	}
	b.mu.Lock()
	key := b.key
	b.mu.Unlock()
	w := waitq.New(b.s, b.waiters, key)
	w.Observe(b.opts.observer, observe.KindBarrier, b.prefix)
	e := &entry{b: b}
	err := w.Acquire(ctx, b.opts.value, e)
	b.mu.Lock()
	b.key = w.NextKey()
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("barrier: enter %q: %w", b.prefix, err)
	}
	b.mu.Lock()
	b.w, b.cutoff, b.readyRev = w, e.r.cutoff, e.r.readyRev
	b.mu.Unlock()
	return nil
}

// entry is the double barrier's [waitq.Turn]: a participant is let in with
// the round it arrived for.
type entry struct {
	b *DoubleBarrier
	r round // the round as last seen; once let in, the one it entered
}

// Reads implements [waitq.Turn]: the ready marker and the participants.
func (e *entry) Reads(*waitq.Waiter) []clientv3.Op { return e.b.readOps() }

// Wait implements [waitq.Turn]: it follows the round until the participant
// is let in, writing the ready marker when its arrival completes a round.
func (e *entry) Wait(ctx context.Context, w *waitq.Waiter, resp *clientv3.TxnResponse) error {
	b, r := e.b, &e.r
	rs := gets(resp, 1)
	r.load(rs[0], rs[1])
	f := follow.New(b.s.Client(), b.prefix, resp.Header.Revision, follow.WithPrefix(), follow.Observed(b.opts.observer, observe.KindBarrier))
	defer f.Close()
	for {
		switch {
		case r.ready && w.Rev() <= r.cutoff:
			return nil
		case !r.ready && len(r.members) >= b.count:
			// The round is full. The participant that completed it, or the
			// first to arrive (in case the one that completed it died),
			// writes the ready marker; the others see it.
			keys, revs := r.first(b.count)
			cutoff := revs[len(revs)-1]
			if w.Rev() == cutoff || w.Rev() == revs[0] {
				ok, err := b.open(ctx, w, r, keys, revs, f)
				if err != nil || ok {
					return err
				}
				continue
			}
		}
		evs, relist, err := f.Next(ctx)
		if err != nil {
			return err
		}
		if relist {
			var resp *clientv3.TxnResponse
			err := w.Retrying(ctx, nil, func(ctx context.Context) (err error) {
				resp, err = w.Check(ctx, b.readOps()...)
				return err
			})
			if err != nil {
				return err
			}
			rs := gets(resp, 0)
			r.load(rs[0], rs[1])
			f.Reset(resp.Header.Revision)
			continue
		}
		for _, ev := range evs {
			key := string(ev.Kv.Key)
			switch {
			case key == b.ready && ev.Type == mvccpb.PUT:
				r.setReady(ev.Kv)
			case key == b.ready:
				r.ready = false
			case !strings.HasPrefix(key, b.waiters):
			case ev.Type == mvccpb.PUT:
				r.members[key] = ev.Kv.CreateRevision
			case key == w.Key():
				return ErrLost
			default:
				delete(r.members, key)
			}
		}
	}
}

// open writes the ready marker for a full round, if the round's first
// count participants are all still there. It reports whether it did; if
// not, it has reloaded r.
func (b *DoubleBarrier) open(ctx context.Context, w *waitq.Waiter, r *round, keys []string, revs []int64, f *follow.Follower) (bool, error) {
	cutoff := revs[len(revs)-1]
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(b.ready), "=", 0), w.IsOwner()}
	if len(keys) <= maxGuarded {
		for i, k := range keys {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", revs[i]))
		}
	}
	resp, err := b.s.Client().Txn(ctx).If(cmps...).
		Then(clientv3.OpPut(b.ready, strconv.FormatInt(cutoff, 10))).
		Else(b.readOps()...).
		Commit()
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		r.ready, r.cutoff, r.readyRev = true, cutoff, resp.Header.Revision
		return true, nil
	}
	rs := gets(resp, 0)
	r.load(rs[0], rs[1])
	if _, ok := r.members[w.Key()]; !ok {
		return false, ErrLost
	}
	f.Reset(resp.Header.Revision)
	return false, nil
}

// gets returns the range responses of a Txn response from index i on.
func gets(resp *clientv3.TxnResponse, i int) []*clientv3.GetResponse {
	var out []*clientv3.GetResponse
	for _, r := range resp.Responses[i:] {
		out = append(out, (*clientv3.GetResponse)(r.GetResponseRange()))
	}
	return out
}
