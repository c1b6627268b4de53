package mutex

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
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
	key    string // this handle's key; replaced after a failed release (guarded by the turn)
	opts   options
	h      *waitq.Handle // the current and last hold, and whose turn it is
}

// New returns a lock on name that holds through session s. The session is
// borrowed: the caller creates it, may share it among many primitives, and
// closes it, which releases every lock held through it. New does no I/O. It
// panics if s is nil or name is empty or "/".
func New(s *concurrency.Session, name string, opts ...Option) *Mutex {
	if s == nil {
		panic("mutex: nil session")
	}
	prefix := waitq.Prefix("mutex", name)
	o := options{}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Mutex{s: s, prefix: prefix, key: waitq.Key(prefix, s), opts: o, h: waitq.NewHandle()}
}

// Lock blocks until the lock is held or ctx is done, riding out etcd's
// transient faults. The hold lasts until [Mutex.Unlock] or until it is
// lost ([Mutex.Done]). It fails with ctx's error, or with [ErrSessionExpired]
// or [ErrLost] if the lease or the key went away while it waited, and
// leaves no key behind (see Cleanup in [github.com/coordkit/coordkit]).
func (m *Mutex) Lock(ctx context.Context) error {
	if err := m.h.Enter(ctx, true); err != nil {
		return fmt.Errorf("mutex: lock %q: %w", m.prefix, err)
	}
	if err := m.acquire(ctx, true); err != nil {
		m.h.Exit()
		return fmt.Errorf("mutex: lock %q: %w", m.prefix, err)
	}
	return nil
}

// TryLock takes the lock if nobody holds or waits for it, and otherwise
// returns [ErrLocked] at once, without waiting. It is a round trip to etcd
// when the lock is free (two or three when it is taken: it joins the line,
// sees someone ahead and leaves), so it takes a context.
func (m *Mutex) TryLock(ctx context.Context) error {
	if err := m.h.Enter(ctx, false); err != nil {
		return fmt.Errorf("mutex: trylock %q: %w", m.prefix, ErrLocked)
	}
	if err := m.acquire(ctx, false); err != nil {
		m.h.Exit()
		return fmt.Errorf("mutex: trylock %q: %w", m.prefix, err)
	}
	return nil
}

func (m *Mutex) acquire(ctx context.Context, wait bool) error {
	if m.h.KeyRetired() {
		m.key = waitq.Key(m.prefix, m.s)
	}
	// The key is this handle's alone and is replaced after a failed
	// release, so Unlock can be a plain delete: a late one can never hit a
	// newer hold.
	w := waitq.New(m.s, m.prefix, m.key, waitq.Unguarded(), waitq.Tail())
	w.Observe(m.opts.observer, observe.KindMutex, m.prefix)
	err := w.Acquire(ctx, m.opts.value, waitq.First{Block: wait})
	m.key = w.NextKey() // the turn is held
	if errors.Is(err, waitq.ErrWouldWait) {
		return ErrLocked
	}
	if err != nil {
		return err
	}
	m.h.Start(w)
	return nil
}

// Unlock releases the lock by deleting this hold's key, guarded by its
// create revision, so a late or repeated Unlock never removes a newer
// hold. It returns [ErrNotLocked] if the handle holds nothing, and an error
// wrapping [ErrLost] or [ErrSessionExpired] if the hold had been lost: the
// critical section was not protected to its end. The hold ends locally
// whatever happens; if the delete fails, Unlock returns its error and the
// session deletes the key once etcd answers.
func (m *Mutex) Unlock(ctx context.Context) error {
	ok, lost, err := m.h.Release(ctx, ErrNotLocked, nil)
	switch {
	case !ok:
		return fmt.Errorf("mutex: unlock %q: %w", m.prefix, ErrNotLocked)
	case lost != nil:
		return fmt.Errorf("mutex: unlock %q: hold had ended before unlock: %w", m.prefix, lost)
	case err != nil:
		return fmt.Errorf("mutex: unlock %q: the key is deleted in the background once etcd answers: %w", m.prefix, err)
	}
	return nil
}

// Done returns a channel that the Mutex closes when the current hold ends,
// by Unlock or by loss (see Holds in [github.com/coordkit/coordkit]).
// Without a current hold it returns the last hold's closed channel.
func (m *Mutex) Done() <-chan struct{} { return m.h.Done() }

// Context returns a context derived from parent that is cancelled when the
// current hold ends, as [Mutex.Done] is closed, with why as its
// [context.Cause]: [ErrNotLocked] after Unlock, [ErrLost] or
// [ErrSessionExpired] on loss. Give it to work that must stop when the
// lock goes. Without a current hold the context is cancelled already.
func (m *Mutex) Context(parent context.Context) context.Context {
	return m.h.Context(parent, ErrNotLocked)
}

// Err returns nil while the lock is held, [ErrNotLocked] before the first
// Lock and after Unlock, and [ErrLost] or [ErrSessionExpired] once a hold
// has been lost (until Unlock). Like Done, it starts watching the hold's
// key, so a delete by someone else shows in Err without Done.
func (m *Mutex) Err() error { return m.h.Err(ErrNotLocked) }

// Token returns the fencing token of the current hold: its key's create
// revision, which strictly increases from one holder of the name to the
// next. It returns 0 when the lock is not held. Unlike the revision etcd's
// Mutex reports, it is right when the lock was contended.
func (m *Mutex) Token() int64 { return m.h.Token() }

// Key returns the current hold's key, or "" when the lock is not held.
func (m *Mutex) Key() string { return m.h.Key() }

// Name returns the lock's key prefix: its name followed by "/", whatever the
// name ends with, as etcd's constructors make it.
func (m *Mutex) Name() string { return m.prefix }

// IsOwner returns a comparison that is true while the current hold's key
// exists with its create revision: add it to your own transactions to make
// them fenced. When the lock is not held, it is a comparison that is never
// true.
func (m *Mutex) IsOwner() clientv3.Cmp { return m.h.IsOwner(m.prefix) }

// Txn starts a transaction that commits its Then branch only while this
// hold still owns the lock, plus any extra comparisons given. Its response's
// Succeeded is false if the hold is gone (or a comparison failed). Finish it
// with Then, optionally Else, and Commit; do not call If again.
func (m *Mutex) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return m.s.Client().Txn(ctx).If(append([]clientv3.Cmp{m.IsOwner()}, cmps...)...)
}
