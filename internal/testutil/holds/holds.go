// Package holds adapts coordkit's primitives to [testutil.Hold], the one
// shape the shared loss tests, the lost-quorum test and the chaos
// scenarios drive. It lives apart from testutil so that testutil, which
// the primitives' internals' tests import, does not import the primitives.
package holds

import (
	"context"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Mutex adapts m: Acquire is Lock, Release is Unlock.
func Mutex(m *mutex.Mutex) testutil.Hold { return mutexHold{m} }

// Writer adapts m's write lock: Acquire is Lock, Release is Unlock.
func Writer(m *rwmutex.RWMutex) testutil.Hold { return writer{m} }

// Reader adapts m's read lock: Acquire is RLock, Release is RUnlock. A
// reader excludes writers only, so a test that wants it to wait puts it
// behind a writer.
func Reader(m *rwmutex.RWMutex) testutil.Hold { return reader{m} }

// Semaphore adapts m taking n permits at once: Acquire is Acquire(ctx, n).
func Semaphore(m *semaphore.Semaphore, n int) testutil.Hold { return permits{m, n} }

// Election adapts e: Acquire is Campaign with value, Release is Resign.
func Election(e *election.Election, value string) testutil.Hold { return leader{e, value} }

// NewMutex is a [testutil.NewHold] for a mutex.
func NewMutex(s *concurrency.Session, name string) testutil.Hold { return Mutex(mutex.New(s, name)) }

// NewWriter is a [testutil.NewHold] for an rwmutex's write lock.
func NewWriter(s *concurrency.Session, name string) testutil.Hold {
	return Writer(rwmutex.New(s, name))
}

// NewReader is a [testutil.NewHold] for an rwmutex's read lock.
func NewReader(s *concurrency.Session, name string) testutil.Hold {
	return Reader(rwmutex.New(s, name))
}

// NewElection is a [testutil.NewHold] for an election, campaigning with
// the value "v".
func NewElection(s *concurrency.Session, name string) testutil.Hold {
	return Election(election.New(s, name), "v")
}

// NewSemaphore returns a [testutil.NewHold] for a semaphore of limit
// permits whose holder takes n of them.
func NewSemaphore(limit, n int) testutil.NewHold {
	return func(s *concurrency.Session, name string) testutil.Hold {
		return Semaphore(semaphore.New(s, name, limit), n)
	}
}

type mutexHold struct{ *mutex.Mutex }

func (m mutexHold) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m mutexHold) Release(ctx context.Context) error { return m.Unlock(ctx) }

type writer struct{ *rwmutex.RWMutex }

func (m writer) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m writer) Release(ctx context.Context) error { return m.Unlock(ctx) }

type reader struct{ *rwmutex.RWMutex }

func (m reader) Acquire(ctx context.Context) error { return m.RLock(ctx) }
func (m reader) Release(ctx context.Context) error { return m.RUnlock(ctx) }

type permits struct {
	*semaphore.Semaphore
	n int
}

func (m permits) Acquire(ctx context.Context) error { return m.Semaphore.Acquire(ctx, m.n) }

type leader struct {
	*election.Election
	value string
}

func (e leader) Acquire(ctx context.Context) error { return e.Campaign(ctx, e.value) }
func (e leader) Release(ctx context.Context) error { return e.Resign(ctx) }

// NewEtcdMutex is a [testutil.NewHold] for etcd's own concurrency.Mutex,
// the control that scenarios compare coordkit with: its loss signal is the
// session's Done, as for code built on etcd's package alone, and its token
// is the revision Lock's response carried.
func NewEtcdMutex(s *concurrency.Session, name string) testutil.Hold {
	return etcdMutex{concurrency.NewMutex(s, name), s}
}

type etcdMutex struct {
	*concurrency.Mutex
	s *concurrency.Session
}

func (m etcdMutex) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m etcdMutex) Release(ctx context.Context) error { return m.Unlock(ctx) }
func (m etcdMutex) Done() <-chan struct{}             { return m.s.Done() }
func (m etcdMutex) Token() int64                      { return m.Header().Revision }

// Err is concurrency.ErrSessionExpired once the session has ended: etcd's
// Mutex has no other way to tell a loss.
func (m etcdMutex) Err() error {
	select {
	case <-m.s.Done():
		return concurrency.ErrSessionExpired
	default:
		return nil
	}
}

// Context is cancelled when parent is, or when the session ends.
func (m etcdMutex) Context(parent context.Context) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(m.s.Ctx(), func() { cancel(concurrency.ErrSessionExpired) })
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}

// Txn is guarded by the lock's key, as etcd's own docs show.
func (m etcdMutex) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return m.s.Client().Txn(ctx).If(append([]clientv3.Cmp{m.IsOwner()}, cmps...)...)
}
