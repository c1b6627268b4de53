package rwmutex

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/observe"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// RWMutex is one participant's handle on a distributed readers-writer lock.
// A handle holds at most one lock at a time, a read lock or the write lock.
// It is safe for concurrent use: goroutines that share a *RWMutex take
// turns holding through it, even for read locks (give each concurrent
// reader its own handle; handles can share a session). Two *RWMutex on one
// session are two separate participants: their write locks exclude each
// other, and their read locks exclude the other's write lock. An RWMutex
// must not be copied.
type RWMutex struct {
	s      *concurrency.Session
	prefix string
	rkey   string // this handle's key while it reads or waits to (replaced under the turn)
	wkey   string // this handle's key while it writes or waits to (replaced under the turn)
	opts   options
	h      *waitq.Handle
}

// New returns a readers-writer lock on name that holds through session s.
// The session is borrowed: the caller creates it, may share it among many
// primitives, and closes it, which releases every lock held through it. New
// does no I/O. It panics if s is nil or name is empty or "/".
func New(s *concurrency.Session, name string, opts ...Option) *RWMutex {
	if s == nil {
		panic("rwmutex: nil session")
	}
	prefix := waitq.Prefix("rwmutex", name)
	o := options{}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &RWMutex{
		s:      s,
		prefix: prefix,
		rkey:   waitq.Key(prefix+"read/", s),
		wkey:   waitq.Key(prefix+"write/", s),
		opts:   o,
		h:      waitq.NewHandle(),
	}
}

// Lock blocks until this handle holds the write lock, with nobody else
// holding the lock in either mode, or until ctx is done. It waits for
// everyone who asked before it, readers and writers, and readers who ask
// after it wait for it. It rides out etcd's transient faults. The hold
// lasts until [RWMutex.Unlock] or until it is lost ([RWMutex.Done]). It
// fails with ctx's error, or with [ErrSessionExpired] or [ErrLost] if the
// lease or the key went away while it waited, and leaves no key behind (see
// Cleanup in [github.com/coordkit/coordkit]).
func (m *RWMutex) Lock(ctx context.Context) error { return m.lock(ctx, "lock", true, true) }

// TryLock takes the write lock if nobody holds or waits for the lock in
// either mode, and otherwise returns [ErrLocked] at once, without waiting.
// It is a round trip to etcd (two when the lock is taken), so it takes a
// context.
func (m *RWMutex) TryLock(ctx context.Context) error { return m.lock(ctx, "trylock", true, false) }

// RLock blocks until this handle holds a read lock or ctx is done. A read
// lock is shared with other readers; it waits only for the writers who asked
// before it. On success and on failure it behaves as [RWMutex.Lock] does.
func (m *RWMutex) RLock(ctx context.Context) error { return m.lock(ctx, "rlock", false, true) }

// TryRLock takes a read lock if no writer holds or waits for the lock, and
// otherwise returns [ErrLocked] at once, without waiting. It is a round trip
// to etcd (two when the lock is taken), so it takes a context.
func (m *RWMutex) TryRLock(ctx context.Context) error { return m.lock(ctx, "tryrlock", false, false) }

func (m *RWMutex) lock(ctx context.Context, op string, write, wait bool) error {
	if err := m.h.Enter(ctx, wait); err != nil {
		if errors.Is(err, waitq.ErrWouldWait) {
			err = ErrLocked
		}
		return fmt.Errorf("rwmutex: %s %q: %w", op, m.prefix, err)
	}
	w := m.waiter(write)
	err := w.Acquire(ctx, m.opts.value, waitq.First{Block: wait})
	if write { // the turn is held
		m.wkey = w.NextKey()
	} else {
		m.rkey = w.NextKey()
	}
	if errors.Is(err, waitq.ErrWouldWait) {
		err = ErrLocked
	}
	if err != nil {
		m.h.Exit()
		return fmt.Errorf("rwmutex: %s %q: %w", op, m.prefix, err)
	}
	m.h.Start(w)
	return nil
}

// waiter returns the place in line for a writer or a reader. Both keys live
// under the lock's prefix; what differs is which keys they wait for, the
// waiter's Prefix. A writer waits for every key ahead of it. A reader waits
// only for writers, so its line, as [waitq.First] sees it, is the writers'
// keys; its own key sits outside that line, and Acquire holds as soon
// as no writer is older than it; it waits on the nearest writer ahead.
func (m *RWMutex) waiter(write bool) *waitq.Waiter {
	if write {
		w := waitq.New(m.s, m.prefix, m.wkey)
		w.Observe(m.opts.observer, observe.KindWrite, m.prefix)
		return w
	}
	w := waitq.New(m.s, m.prefix+"write/", m.rkey)
	w.Observe(m.opts.observer, observe.KindRead, m.prefix)
	return w
}

// Unlock releases the write lock by deleting this hold's key, guarded by its
// create revision so that a late or repeated Unlock can never delete a newer
// hold's key. It returns [ErrNotLocked] if the handle does not hold the write
// lock, and an error wrapping [ErrLost] or [ErrSessionExpired] if the hold
// had been lost: the critical section was not protected to its end. The
// hold ends locally whatever happens; if the delete fails, Unlock returns
// its error and the session deletes the key once etcd answers.
func (m *RWMutex) Unlock(ctx context.Context) error { return m.unlock(ctx, "unlock", true) }

// RUnlock releases a read lock. It returns [ErrNotLocked] if the handle does
// not hold a read lock, and otherwise behaves as [RWMutex.Unlock] does.
func (m *RWMutex) RUnlock(ctx context.Context) error { return m.unlock(ctx, "runlock", false) }

func (m *RWMutex) unlock(ctx context.Context, op string, write bool) error {
	ok, lost, err := m.h.Release(ctx, ErrNotLocked, func(h *waitq.Hold) bool { return m.writes(h.Waiter().Key()) == write })
	switch {
	case !ok:
		return fmt.Errorf("rwmutex: %s %q: %w", op, m.prefix, ErrNotLocked)
	case lost != nil:
		return fmt.Errorf("rwmutex: %s %q: hold had ended before unlock: %w", op, m.prefix, lost)
	case err != nil:
		return fmt.Errorf("rwmutex: %s %q: the key is deleted in the background once etcd answers: %w", op, m.prefix, err)
	}
	return nil
}

// Done returns a channel that the RWMutex closes when the current hold,
// read or write, ends, by unlocking or by loss (see Holds in
// [github.com/coordkit/coordkit]). Without a current hold it returns the
// last hold's closed channel.
func (m *RWMutex) Done() <-chan struct{} { return m.h.Done() }

// Context returns a context derived from parent that is cancelled when the
// current hold, read or write, ends, as [RWMutex.Done] is closed, with why
// as its [context.Cause]: [ErrNotLocked] after unlocking, [ErrLost] or
// [ErrSessionExpired] on loss. Without a current hold the context is
// cancelled already.
func (m *RWMutex) Context(parent context.Context) context.Context {
	return m.h.Context(parent, ErrNotLocked)
}

// Err returns nil while a lock is held, [ErrNotLocked] before the first lock
// and after unlocking, and [ErrLost] or [ErrSessionExpired] once a hold has
// been lost (until it is unlocked). Like [RWMutex.Done], it starts watching
// the hold's key, so a delete by someone else shows in Err without Done.
func (m *RWMutex) Err() error { return m.h.Err(ErrNotLocked) }

// Token returns the fencing token of the current hold: its key's create
// revision. Writers' tokens strictly increase from one writer to the next,
// and a reader's lies between those of the writers before and after it. It
// returns 0 when no lock is held.
func (m *RWMutex) Token() int64 { return m.h.Token() }

// Key returns the current hold's key, or "" when no lock is held.
func (m *RWMutex) Key() string { return m.h.Key() }

// Writing reports whether the handle holds the write lock.
func (m *RWMutex) Writing() bool { return m.writes(m.h.Key()) }

// writes reports whether key is one of this lock's writer keys.
func (m *RWMutex) writes(key string) bool { return strings.HasPrefix(key, m.prefix+"write/") }

// Name returns the lock's key prefix: its name followed by "/", whatever the
// name ends with, as etcd's constructors make it.
func (m *RWMutex) Name() string { return m.prefix }

// IsOwner returns a comparison that is true while the current hold's key
// exists with its create revision: add it to your own transactions to make
// them fenced. When no lock is held, it is a comparison that is never true.
func (m *RWMutex) IsOwner() clientv3.Cmp { return m.h.IsOwner(m.prefix) }

// Txn starts a transaction that commits its Then branch only while this
// handle's current hold (read or write) still holds, plus any extra
// comparisons given. Its response's Succeeded is false if the hold is gone
// (or a comparison failed). Finish it with Then, optionally Else, and
// Commit; do not call If again.
func (m *RWMutex) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return m.s.Client().Txn(ctx).If(append([]clientv3.Cmp{m.IsOwner()}, cmps...)...)
}
