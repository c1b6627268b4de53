package semaphore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Semaphore is one participant's handle on a distributed counting semaphore.
// A handle holds at most one grant at a time, of any weight up to the limit.
// It is safe for concurrent use: goroutines that share a *Semaphore take
// turns holding through it. Two *Semaphore on one session are two separate
// participants, each with its own place in line. A Semaphore must not be
// copied.
type Semaphore struct {
	s      *concurrency.Session
	prefix string
	key    string // this handle's key; replaced after an abandoned join (under the turn)
	limit  int
	opts   options
	h      *waitq.Handle
}

// New returns a handle on the semaphore name, which admits holders while
// the weights they hold add up to at most limit, and holds through session
// s. The session is borrowed: the caller creates it, may share it among
// many primitives, and closes it, which releases every grant held through
// it. New does no I/O. It panics if s is nil, name is empty or "/", or
// limit < 1.
func New(s *concurrency.Session, name string, limit int, opts ...Option) *Semaphore {
	if s == nil {
		panic("semaphore: nil session")
	}
	if limit < 1 {
		panic(fmt.Sprintf("semaphore: limit %d < 1", limit))
	}
	prefix := waitq.Prefix("semaphore", name)
	o := options{}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Semaphore{
		s:      s,
		prefix: prefix,
		key:    waitq.Key(prefix, s),
		limit:  limit,
		opts:   o,
		h:      waitq.NewHandle(),
	}
}

// Acquire blocks until the semaphore grants n permits to this handle or
// ctx is done. Requests are granted first come, first served: n permits are
// granted once the permits held or requested by everyone queued ahead, plus
// n, fit in the limit, so a large request at the head of the line is not
// overtaken by small ones behind it. It rides out etcd's transient faults.
// The grant lasts until [Semaphore.Release] or until it is lost
// ([Semaphore.Done]).
//
// It returns [ErrInvalidWeight] at once for a request that can never be
// granted, [ErrLimitMismatch] if someone holding or waiting opened the
// semaphore with another limit, ctx's error, or [ErrSessionExpired] or
// [ErrLost] if the lease or the key went away while it waited. It leaves
// no key behind (see Cleanup in [github.com/coordkit/coordkit]).
func (m *Semaphore) Acquire(ctx context.Context, n int) error {
	if err := m.valid(n); err != nil {
		return fmt.Errorf("semaphore: acquire %q: %w", m.prefix, err)
	}
	if err := m.h.Enter(ctx, true); err != nil {
		return fmt.Errorf("semaphore: acquire %q: %w", m.prefix, err)
	}
	if err := m.acquire(ctx, n, true); err != nil {
		m.h.Exit()
		return fmt.Errorf("semaphore: acquire %q: %w", m.prefix, err)
	}
	return nil
}

// TryAcquire takes n permits if they can be granted now, without waiting,
// and otherwise returns [ErrNoPermits] and leaves nothing behind. Like
// Acquire, it never overtakes a request queued ahead of it. It is a round
// trip to etcd (two when it fails), so it takes a context.
func (m *Semaphore) TryAcquire(ctx context.Context, n int) error {
	if err := m.valid(n); err != nil {
		return fmt.Errorf("semaphore: tryacquire %q: %w", m.prefix, err)
	}
	if err := m.h.Enter(ctx, false); err != nil {
		return fmt.Errorf("semaphore: tryacquire %q: %w", m.prefix, ErrNoPermits)
	}
	if err := m.acquire(ctx, n, false); err != nil {
		m.h.Exit()
		return fmt.Errorf("semaphore: tryacquire %q: %w", m.prefix, err)
	}
	return nil
}

func (m *Semaphore) valid(n int) error {
	if n < 1 || n > m.limit {
		return fmt.Errorf("%w (%d), got %d", ErrInvalidWeight, m.limit, n)
	}
	return nil
}

// acquire joins the line with a weight of n and waits for room.
func (m *Semaphore) acquire(ctx context.Context, n int, wait bool) error {
	value, err := json.Marshal(record{Weight: n, Limit: m.limit, Value: m.opts.value})
	if err != nil {
		return err
	}
	w := waitq.New(m.s, m.prefix, m.key)
	w.Observe(m.opts.observer, observe.KindSemaphore, m.prefix)
	err = w.Acquire(ctx, string(value), room{m: m, n: n, wait: wait})
	m.key = w.NextKey() // the turn is held
	if err != nil {
		return err
	}
	m.h.Start(w)
	return nil
}

// room is the semaphore's [waitq.Turn]: n permits are granted once the
// weights of everyone queued ahead, plus n, fit in the limit.
type room struct {
	m    *Semaphore
	n    int
	wait bool // without it, a request that does not fit returns ErrNoPermits
}

// Reads implements [waitq.Turn]: everyone in line, read in the Txn that
// writes our key, so all of them are ahead of us.
func (r room) Reads(*waitq.Waiter) []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(r.m.prefix, clientv3.WithPrefix())}
}

// Wait implements [waitq.Turn]: it adds up the weights ahead and, if they
// leave no room for n, waits for room ([waitq.Waiter.WaitRoom]).
func (r room) Wait(ctx context.Context, w *waitq.Waiter, resp *clientv3.TxnResponse) error {
	m := r.m
	ahead := resp.Responses[1].GetResponseRange().Kvs
	sum, err := m.ahead(ahead, w.Rev())
	switch {
	case err != nil:
		return err
	case sum+int64(r.n) <= int64(m.limit):
		return nil
	case !r.wait:
		return ErrNoPermits
	}
	return w.WaitRoom(ctx, ahead, resp.Header.Revision, int64(m.limit-r.n), m.weight)
}

// record is what a participant's key holds.
type record struct {
	Weight int    `json:"weight"`
	Limit  int    `json:"limit"`
	Value  string `json:"value,omitempty"`
}

// parse reads a participant's record; ok is false for a key that is not
// one (such as an "etcdctl lock" on the same name).
func parse(kv *mvccpb.KeyValue) (r record, ok bool) {
	if err := json.Unmarshal(kv.Value, &r); err != nil || r.Weight < 1 || r.Limit < 1 {
		return record{}, false
	}
	return r, true
}

// weight is how many permits kv's owner holds or waits for. A key that is
// not a participant's counts as holding them all: it is treated as an
// exclusive holder rather than ignored.
func (m *Semaphore) weight(kv *mvccpb.KeyValue) int64 {
	if r, ok := parse(kv); ok {
		return int64(r.Weight)
	}
	return int64(m.limit)
}

// ahead adds up the weights of the keys created before rev, and fails if
// any of them was written with another limit.
func (m *Semaphore) ahead(kvs []*mvccpb.KeyValue, rev int64) (int64, error) {
	var sum int64
	for _, kv := range kvs {
		if kv.CreateRevision >= rev {
			continue
		}
		if r, ok := parse(kv); ok && r.Limit != m.limit {
			return 0, fmt.Errorf("%w: %s has %d, this handle %d", ErrLimitMismatch, kv.Key, r.Limit, m.limit)
		}
		sum += m.weight(kv)
	}
	return sum, nil
}

// Release gives back the permits this handle holds by deleting its key,
// guarded by its create revision so that a late or repeated Release can
// never delete a newer grant's key. It returns [ErrNotHeld] if the handle
// holds nothing, and an error wrapping [ErrLost] or [ErrSessionExpired] if
// the grant had been lost: the work it guarded was not protected to its
// end. The grant ends locally whatever happens; if the delete fails,
// Release returns its error and the session deletes the key once etcd
// answers, so its permits stay taken until then.
func (m *Semaphore) Release(ctx context.Context) error {
	ok, lost, err := m.h.Release(ctx, ErrNotHeld, nil)
	switch {
	case !ok:
		return fmt.Errorf("semaphore: release %q: %w", m.prefix, ErrNotHeld)
	case lost != nil:
		return fmt.Errorf("semaphore: release %q: grant had ended before release: %w", m.prefix, lost)
	case err != nil:
		return fmt.Errorf("semaphore: release %q: the key is deleted in the background once etcd answers: %w", m.prefix, err)
	}
	return nil
}

// Done returns a channel that the Semaphore closes when the current grant
// ends, by Release or by loss (see Holds in [github.com/coordkit/coordkit]).
// Without a current grant it returns the last grant's closed channel.
func (m *Semaphore) Done() <-chan struct{} { return m.h.Done() }

// Context returns a context derived from parent that is cancelled when the
// current grant ends, as [Semaphore.Done] is closed, with why as its
// [context.Cause]: [ErrNotHeld] after Release, [ErrLost] or
// [ErrSessionExpired] on loss. Without a current grant the context is
// cancelled already.
func (m *Semaphore) Context(parent context.Context) context.Context {
	return m.h.Context(parent, ErrNotHeld)
}

// Err returns nil while permits are held, [ErrNotHeld] before the first
// Acquire and after Release, and [ErrLost] or [ErrSessionExpired] once a
// grant has been lost (until Release). Like [Semaphore.Done], it starts
// watching the grant's key, so a delete by someone else shows in Err
// without Done.
func (m *Semaphore) Err() error { return m.h.Err(ErrNotHeld) }

// Token returns the fencing token of the current grant: its key's create
// revision, which is unique to the grant and increases in the order
// requests joined the line. It returns 0 when nothing is held.
func (m *Semaphore) Token() int64 { return m.h.Token() }

// Key returns the current grant's key, or "" when nothing is held.
func (m *Semaphore) Key() string { return m.h.Key() }

// Name returns the semaphore's key prefix: its name followed by "/", whatever the
// name ends with, as etcd's constructors make it.
func (m *Semaphore) Name() string { return m.prefix }

// Limit returns the limit this handle was made with.
func (m *Semaphore) Limit() int { return m.limit }

// IsOwner returns a comparison that is true while the current grant's key
// exists with its create revision: add it to your own transactions to make
// them fenced. When nothing is held, it is a comparison that is never true.
func (m *Semaphore) IsOwner() clientv3.Cmp { return m.h.IsOwner(m.prefix) }

// Txn starts a transaction that commits its Then branch only while this
// handle's grant still holds, plus any extra comparisons given. Its
// response's Succeeded is false if the grant is gone (or a comparison
// failed). Finish it with Then, optionally Else, and Commit; do not call If
// again.
func (m *Semaphore) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return m.s.Client().Txn(ctx).If(append([]clientv3.Cmp{m.IsOwner()}, cmps...)...)
}
