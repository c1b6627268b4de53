package mutex

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coordkit/coordkit/internal/waitq"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Mutex is a distributed lock on one name. It is safe for concurrent use:
// goroutines that share a *Mutex exclude each other as they would with a
// sync.Mutex, and two *Mutex on the same session and name are two separate
// holders that exclude each other. A Mutex must not be copied.
type Mutex struct {
	s      *concurrency.Session
	prefix string
	key    string
	opts   options
	// local has room for one token: the goroutine that put it there is
	// locking or holds the lock through this handle.
	local  chan struct{}
	closed chan struct{} // always closed: Done before the first Lock

	mu   sync.Mutex // guards hold, last
	hold *hold      // the current hold, nil when not held
	last *hold      // the most recent hold, for Done and Err after it ends
}

// New returns a lock on name that holds through session s. The session is
// borrowed: the caller creates it, may share it among many primitives, and
// closes it, which releases every lock held through it. New does no I/O. It
// panics if name is empty or "/".
func New(s *concurrency.Session, name string, opts ...Option) *Mutex {
	if s == nil {
		panic("mutex: nil session")
	}
	prefix := waitq.Prefix("mutex", name)
	o := options{}
	for _, opt := range opts {
		opt.apply(&o)
	}
	closed := make(chan struct{})
	close(closed)
	return &Mutex{
		s:      s,
		prefix: prefix,
		key:    waitq.Key(prefix, s),
		opts:   o,
		local:  make(chan struct{}, 1),
		closed: closed,
	}
}

// Lock blocks until the lock is held or ctx is done. On success the hold
// lasts until [Mutex.Unlock] or until it is lost (see [Mutex.Done]). On
// failure it returns an error that satisfies errors.Is(err, ctx.Err()) when
// ctx ended, or wraps [ErrSessionExpired] or [ErrLost] when the session's
// lease or the waiter's key went away while waiting; either way it first
// deletes its key, so nothing is left behind (if etcd cannot be reached for
// that, the key goes with the session's lease).
func (m *Mutex) Lock(ctx context.Context) error {
	select {
	case m.local <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("mutex: lock %q: %w", m.prefix, ctx.Err())
	}
	if err := m.acquire(ctx, true); err != nil {
		<-m.local
		return fmt.Errorf("mutex: lock %q: %w", m.prefix, err)
	}
	return nil
}

// TryLock takes the lock if nobody holds or waits for it, and otherwise
// returns [ErrLocked] at once, without waiting. It is a round trip to etcd
// (two when the lock is taken), so it takes a context.
func (m *Mutex) TryLock(ctx context.Context) error {
	select {
	case m.local <- struct{}{}:
	default:
		return fmt.Errorf("mutex: trylock %q: %w", m.prefix, ErrLocked)
	}
	if err := m.acquire(ctx, false); err != nil {
		<-m.local
		return fmt.Errorf("mutex: trylock %q: %w", m.prefix, err)
	}
	return nil
}

func (m *Mutex) acquire(ctx context.Context, wait bool) (err error) {
	w := waitq.New(m.s, m.prefix, m.key)
	bctx, cancel := w.Bind(ctx)
	defer cancel()
	defer func() {
		if err != nil {
			err = w.Err(bctx, err)
		}
	}()
	if err := bctx.Err(); err != nil {
		return err
	}
	// The newest two keys under the prefix: ours, written by this Txn, and
	// the one just ahead of it, if any. One round trip decides an
	// uncontended lock.
	top2 := append(clientv3.WithLastCreate(), clientv3.WithLimit(2), clientv3.WithKeysOnly())
	resp, fresh, err := w.Join(bctx, m.opts.value, clientv3.OpGet(m.prefix, top2...))
	if err == nil && !fresh {
		// A key of ours survived an Unlock that could not reach etcd. Start
		// over with a new place in line rather than reuse a stale token.
		if err = w.Leave(bctx); err == nil {
			resp, fresh, err = w.Join(bctx, m.opts.value, clientv3.OpGet(m.prefix, top2...))
		}
	}
	if err != nil {
		// The Join may have taken effect before ctx ended: remove the key.
		w.Abandon(ctx)
		return err
	}
	var pred *mvccpb.KeyValue
	readRev := resp.Header.Revision
	if fresh {
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			if kv.CreateRevision < w.Rev {
				pred = kv
			}
		}
	} else {
		pred, readRev, err = m.predecessor(bctx, w)
	}
	for err == nil && pred != nil {
		if !wait {
			err = ErrLocked
			break
		}
		if err = w.WaitDelete(bctx, pred, readRev); err == nil {
			pred, readRev, err = m.predecessor(bctx, w)
		}
	}
	if err == nil {
		err = w.AwaitLease(bctx)
	}
	if err != nil {
		w.Leave(ctx)
		return err
	}
	m.startHold(w)
	return nil
}

// predecessor returns the key just ahead of w in line, nil if w is first,
// in a read that fails with ErrLost if w's own key is gone.
func (m *Mutex) predecessor(ctx context.Context, w *waitq.Waiter) (*mvccpb.KeyValue, int64, error) {
	ahead := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(w.Rev-1), clientv3.WithKeysOnly())
	resp, err := w.Check(ctx, clientv3.OpGet(m.prefix, ahead...))
	if err != nil {
		return nil, 0, err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return kvs[0], resp.Header.Revision, nil
}

// Unlock releases the lock by deleting this hold's key, guarded by its
// create revision so that a late or repeated Unlock can never delete a newer
// hold's key. It returns [ErrNotLocked] if the handle holds nothing. The
// hold ends locally whatever happens: if the delete fails (ctx ended, etcd
// unreachable) Unlock returns that error and the key stays until this
// handle's next Lock replaces it or the session ends, so others wait until
// then; close the session to be sure. If the hold had already been lost,
// Unlock returns an error wrapping [ErrLost] or [ErrSessionExpired]: the
// critical section was not protected to its end.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.hold
	m.mu.Unlock()
	if h == nil {
		return fmt.Errorf("mutex: unlock %q: %w", m.prefix, ErrNotLocked)
	}
	lostErr := h.Err()
	_, err := m.s.Client().Txn(ctx).If(h.w.IsOwner()).Then(clientv3.OpDelete(h.w.Key)).Commit()
	h.end(ErrNotLocked)
	m.mu.Lock()
	m.hold, m.last = nil, h
	m.mu.Unlock()
	<-m.local
	switch {
	case lostErr != nil:
		return fmt.Errorf("mutex: unlock %q: hold had ended before unlock: %w", m.prefix, lostErr)
	case err != nil:
		return fmt.Errorf("mutex: unlock %q: key %s may remain until the session ends: %w", m.prefix, h.w.Key, err)
	}
	return nil
}

// Done returns a channel that is closed when the current hold ends for any
// reason: Unlock, lease expired or revoked, key deleted, session closed, or
// the lease's local deadline passed. Before the first Lock, and after a hold
// ended until the next Lock succeeds, it returns the last hold's (closed)
// channel. The Mutex closes the channel; callers only receive from it.
func (m *Mutex) Done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.hold != nil:
		return m.hold.watch()
	case m.last != nil:
		return m.last.done
	}
	return m.closed
}

// Err returns nil while the lock is held, [ErrNotLocked] before the first
// Lock and after Unlock, and [ErrLost] or [ErrSessionExpired] once a hold
// has been lost (until Unlock). Lease loss is seen at once; a key deleted by
// someone else is seen once [Mutex.Done] has been called for the hold,
// which starts watching the key.
func (m *Mutex) Err() error {
	m.mu.Lock()
	h := m.hold
	m.mu.Unlock()
	if h == nil {
		return ErrNotLocked
	}
	return h.Err()
}

// Token returns the fencing token of the current hold: its key's create
// revision, which strictly increases from one holder of the name to the
// next. It returns 0 when the lock is not held. Unlike the revision etcd's
// Mutex reports, it is right when the lock was contended.
func (m *Mutex) Token() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		return 0
	}
	return m.hold.w.Rev
}

// Key returns the current hold's key, or "" when the lock is not held.
func (m *Mutex) Key() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		return ""
	}
	return m.hold.w.Key
}

// Name returns the lock's key prefix: its name with a trailing slash.
func (m *Mutex) Name() string { return m.prefix }

// IsOwner returns a comparison that is true while the current hold's key
// exists with its create revision: add it to your own transactions to make
// them fenced. When the lock is not held, it is a comparison that is never
// true.
func (m *Mutex) IsOwner() clientv3.Cmp {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		return clientv3.Compare(clientv3.CreateRevision(m.key), "=", -1)
	}
	return m.hold.w.IsOwner()
}

// Txn starts a transaction that commits its Then branch only while this
// hold still owns the lock, plus any extra comparisons given. Its response's
// Succeeded is false if the hold is gone (or a comparison failed). Finish it
// with Then, optionally Else, and Commit; do not call If again.
func (m *Mutex) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return m.s.Client().Txn(ctx).If(append([]clientv3.Cmp{m.IsOwner()}, cmps...)...)
}

func (m *Mutex) startHold(w *waitq.Waiter) {
	h := &hold{w: w, done: make(chan struct{})}
	// Lease loss costs nothing to follow: the session's tracker is shared.
	// Watching the key itself costs a watch per hold, so it starts only
	// when someone asks for Done.
	h.stopLease = context.AfterFunc(w.Tracker.Context(), func() {
		if err := w.Tracker.Err(); err != nil {
			h.finish(err)
		}
	})
	m.mu.Lock()
	m.hold = h
	m.mu.Unlock()
}

// hold is one acquisition.
type hold struct {
	w         *waitq.Waiter
	done      chan struct{}
	stopLease func() bool

	mu     sync.Mutex // guards err, stop, exited
	err    error      // why the hold ended; nil while held
	stop   context.CancelFunc
	exited chan struct{} // closed when the monitor returns; nil if none ran
}

func (h *hold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		// The tracker may have given up a moment before its callback ran.
		return h.w.Tracker.Err()
	}
	return h.err
}

// watch starts the monitor of the hold's key, once, and returns done.
func (h *hold) watch() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited == nil && h.err == nil {
		ctx, stop := context.WithCancel(context.Background())
		h.stop, h.exited = stop, make(chan struct{})
		go h.monitor(ctx)
	}
	return h.done
}

// finish records why the hold ended and closes done, once.
func (h *hold) finish(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
		close(h.done)
	}
}

// end stops the monitor and the lease callback, waits for the monitor, and
// records why the hold ended.
func (h *hold) end(err error) {
	h.stopLease()
	h.mu.Lock()
	stop, exited := h.stop, h.exited
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-exited
	}
	h.finish(err)
}

// monitor closes done when the key is deleted or the lease is lost.
func (h *hold) monitor(ctx context.Context) {
	defer close(h.exited)
	// Every call stops when the lease tracker gives up, even one that etcd
	// never answers.
	ctx, cancel := h.w.Bind(ctx)
	defer cancel()
	own := &mvccpb.KeyValue{Key: []byte(h.w.Key), CreateRevision: h.w.Rev}
	// The key's create revision is a safe start: every later change to it
	// is after it.
	readRev := h.w.Rev
	for {
		err := h.w.WaitDeleteFrom(ctx, own, readRev)
		if err == nil {
			// Deleted, or the watch broke: look at the key itself.
			var resp *clientv3.TxnResponse
			resp, err = h.w.Check(ctx, clientv3.OpGet(h.w.Key, clientv3.WithCountOnly()))
			if err == nil {
				readRev = resp.Header.Revision
				continue
			}
		}
		if lerr := h.w.Tracker.Err(); lerr != nil {
			h.finish(lerr)
			return
		}
		if errors.Is(err, ErrLost) || errors.Is(err, ErrSessionExpired) {
			h.finish(err)
			return
		}
		if context.Cause(ctx) == context.Canceled && ctx.Err() != nil {
			return // stopped by Unlock
		}
	}
}
