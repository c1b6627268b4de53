package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func TestLockUnlock(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	m := mutex.New(s, pfx+"lock", mutex.WithValue("host-a"))
	ctx := t.Context()

	require.ErrorIs(t, m.Err(), mutex.ErrNotLocked)
	require.Zero(t, m.Token())
	select {
	case <-m.Done():
	default:
		t.Fatal("Done before the first Lock must be closed")
	}

	require.NoError(t, m.Lock(ctx))
	require.NoError(t, m.Err())
	require.Equal(t, []string{m.Key()}, testutil.Keys(t, cli, pfx))
	require.Contains(t, m.Key(), fmt.Sprintf("%slock/%x_", pfx, int64(s.Lease())), "key starts with the lease id in hex")
	resp, err := cli.Get(ctx, m.Key())
	require.NoError(t, err)
	require.Equal(t, resp.Kvs[0].CreateRevision, m.Token(), "Token is the key's create revision")
	require.Equal(t, "host-a", string(resp.Kvs[0].Value))
	done := m.Done()

	require.NoError(t, m.Unlock(ctx))
	testutil.WaitClosed(t, done, time.Second, "Done after Unlock")
	require.ErrorIs(t, m.Err(), mutex.ErrNotLocked)
	require.Empty(t, testutil.Keys(t, cli, pfx))
	require.ErrorIs(t, m.Unlock(ctx), mutex.ErrNotLocked, "second Unlock")
}

func TestTryLock(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	a := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	b := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	ctx := t.Context()

	require.NoError(t, a.TryLock(ctx))
	require.ErrorIs(t, a.TryLock(ctx), mutex.ErrLocked, "TryLock through a handle that holds")
	require.ErrorIs(t, b.TryLock(ctx), mutex.ErrLocked)
	require.Equal(t, []string{a.Key()}, testutil.Keys(t, cli, pfx), "a failed TryLock leaves no key")
	require.NoError(t, a.Unlock(ctx))
	require.NoError(t, b.TryLock(ctx))
	require.NoError(t, b.Unlock(ctx))
}

func TestTwoHandlesOnOneSessionExclude(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	a, b := mutex.New(s, pfx+"lock"), mutex.New(s, pfx+"lock")
	ctx := t.Context()

	require.NoError(t, a.Lock(ctx))
	require.ErrorIs(t, b.TryLock(ctx), mutex.ErrLocked)
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("b.Lock returned %v while a holds", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, a.Unlock(ctx))
	require.NoError(t, <-got)
	require.Greater(t, b.Token(), int64(0))
	require.NoError(t, b.Unlock(ctx))
}

// TestMutualExclusionAndTokens runs several sessions that take the lock in
// turn, and judges the outcome: no two critical sections overlap, every
// acquisition happened, and tokens strictly increase in acquisition order.
func TestMutualExclusionAndTokens(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const workers, rounds = 6, 15
	var (
		inside atomic.Int32
		mu     sync.Mutex
		tokens []int64
		wg     sync.WaitGroup
		errc   = make(chan error, workers)
	)
	for i := range workers {
		// Half of the workers share a session: distinct handles on one
		// session must exclude each other too.
		c := testutil.Client(t, srv)
		s := testutil.Session(t, c, 10)
		if i%2 == 1 {
			s = testutil.Session(t, cli, 10)
		}
		m := mutex.New(s, pfx+"lock")
		wg.Go(func() {
			for range rounds {
				if err := m.Lock(t.Context()); err != nil {
					errc <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errc <- fmt.Errorf("%d holders at once", n)
				}
				mu.Lock()
				tokens = append(tokens, m.Token())
				mu.Unlock()
				inside.Add(-1)
				if err := m.Unlock(t.Context()); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	require.Len(t, tokens, workers*rounds)
	for i := 1; i < len(tokens); i++ {
		require.Greater(t, tokens[i], tokens[i-1], "token %d", i)
	}
}

func TestFIFO(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	require.NoError(t, holder.Lock(ctx))

	// Queue three waiters one after another, each once its key is visible.
	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		m := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
		wg.Go(func() {
			if err := m.Lock(ctx); err != nil {
				t.Error(err)
				return
			}
			order <- i
			if err := m.Unlock(ctx); err != nil {
				t.Error(err)
			}
		})
		require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == i+2 }, 5*time.Second, 5*time.Millisecond)
	}
	require.NoError(t, holder.Unlock(ctx))
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	require.Equal(t, []int{0, 1, 2}, got)
}

func TestCancelledLockLeavesNoKey(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	waiter := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	require.NoError(t, holder.Lock(t.Context()))

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := waiter.Lock(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, []string{holder.Key()}, testutil.Keys(t, cli, pfx))

	// Already cancelled: no RPC is even tried.
	require.ErrorIs(t, waiter.Lock(ctx), context.DeadlineExceeded)
	require.NoError(t, holder.Unlock(t.Context()))
	// The waiter's handle is usable again.
	require.NoError(t, waiter.Lock(t.Context()))
	require.NoError(t, waiter.Unlock(t.Context()))
}

// TestLockCancelledMidRequest cancels Lock while its first request is in
// flight (responses are delayed), the case where the key may or may not
// have been written. Either way nothing must be left.
func TestLockCancelledMidRequest(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	pcli := es.ProxyClient(t, 0)
	s := testutil.Session(t, pcli, 10)
	m := mutex.New(s, "/mid/lock")
	es.Member(0).DelayResponses(400*time.Millisecond, 0)
	for i := range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(50+60*i)*time.Millisecond)
		err := m.Lock(ctx)
		cancel()
		if err == nil {
			// The lock was won before the deadline: fine, release it.
			require.NoError(t, m.Unlock(t.Context()))
			continue
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, testutil.Keys(t, direct, "/mid/"), "trial %d left a key", i)
	}
	es.Member(0).Undelay()
}

func TestWaiterLeaseRevokedReturnsError(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	ws := testutil.Session(t, testutil.Client(t, srv), 10)
	waiter := mutex.New(ws, pfx+"lock")
	require.NoError(t, holder.Lock(t.Context()))

	got := make(chan error, 1)
	go func() { got <- waiter.Lock(t.Context()) }()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 2 }, 5*time.Second, 5*time.Millisecond)
	_, err := cli.Revoke(t.Context(), ws.Lease())
	require.NoError(t, err)
	select {
	case err := <-got:
		require.ErrorIs(t, err, mutex.ErrSessionExpired, "Lock after the waiter's lease was revoked")
	case <-time.After(15 * time.Second):
		t.Fatal("Lock did not return after its lease was revoked")
	}
	require.NoError(t, holder.Err(), "the holder is unaffected")
	require.NoError(t, holder.Unlock(t.Context()))
}

func TestWaiterKeyDeletedNeverWins(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	waiter := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	require.NoError(t, holder.Lock(t.Context()))
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(t.Context()) }()
	var wkey string
	require.Eventually(t, func() bool {
		k := testutil.Keys(t, cli, pfx)
		if len(k) == 2 {
			wkey = k[1]
		}
		return wkey != ""
	}, 5*time.Second, 5*time.Millisecond)
	_, err := cli.Delete(t.Context(), wkey)
	require.NoError(t, err)
	require.NoError(t, holder.Unlock(t.Context()))
	require.ErrorIs(t, <-got, mutex.ErrLost)
	require.Empty(t, testutil.Keys(t, cli, pfx))
}

func TestGuardedTxn(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })
	m := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	_, err := m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	resp, err := m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "not held: the guarded write must fail")

	require.NoError(t, m.Lock(t.Context()))
	resp, err = m.Txn(t.Context(), clientv3.Compare(clientv3.Version(pfx+"data"), "=", 0)).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.NoError(t, m.Unlock(t.Context()))
}

// TestStaleUnlockCannotDeleteNewerHold replays the lost-response case: an
// old handle's repeated Unlock must not release a newer hold on the same
// session.
func TestStaleUnlockCannotDeleteNewerHold(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	a, b := mutex.New(s, pfx+"lock"), mutex.New(s, pfx+"lock")
	require.NoError(t, a.Lock(t.Context()))
	stale := a.IsOwner()
	require.NoError(t, a.Unlock(t.Context()))
	require.NoError(t, b.Lock(t.Context()))
	require.ErrorIs(t, a.Unlock(t.Context()), mutex.ErrNotLocked)
	// The old hold's guard no longer matches anything.
	resp, err := cli.Txn(t.Context()).If(stale).Then(clientv3.OpDelete(b.Key())).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	require.Equal(t, []string{b.Key()}, testutil.Keys(t, cli, pfx))
	require.NoError(t, b.Unlock(t.Context()))
}

func TestInteropWithEtcdMutex(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	ours := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	theirs := concurrency.NewMutex(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"lock")

	// Theirs holds: ours cannot take it, and gets it once theirs unlocks.
	require.NoError(t, theirs.Lock(ctx))
	require.ErrorIs(t, ours.TryLock(ctx), mutex.ErrLocked)
	got := make(chan error, 1)
	go func() { got <- ours.Lock(ctx) }()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, theirs.Unlock(ctx))
	require.NoError(t, <-got)

	// Ours holds: theirs cannot take it, and gets it once ours unlocks.
	require.ErrorIs(t, theirs.TryLock(ctx), concurrency.ErrLocked)
	go func() { got <- theirs.Lock(ctx) }()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 2 }, 5*time.Second, 5*time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("etcd Mutex.Lock returned %v while ours holds", err)
	default:
	}
	require.NoError(t, ours.Unlock(ctx))
	require.NoError(t, <-got)
	require.NoError(t, theirs.Unlock(ctx))
}

func TestBadInput(t *testing.T) {
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	require.PanicsWithValue(t, "mutex: empty name", func() { mutex.New(s, "") })
	require.Panics(t, func() { mutex.New(s, "/") })
	require.Panics(t, func() { mutex.New(nil, "x") })
}

// TestLockUnreachableDoesNotHang cuts the client off while another session
// holds the lock: Lock must end with its context's error, and its cleanup
// is bounded too.
func TestLockUnreachableDoesNotHang(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	holder := mutex.New(testutil.Session(t, es.Client(), 10), "/unreachable/lock")
	require.NoError(t, holder.Lock(t.Context()))
	m := mutex.New(testutil.Session(t, es.ProxyClient(t, 0), 10), "/unreachable/lock")
	es.Member(0).Blackhole()
	defer es.Member(0).Unblackhole()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- m.Lock(ctx) }()
	select {
	case err := <-got:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(30 * time.Second):
		t.Fatal("Lock hung on an unreachable etcd")
	}
	require.NoError(t, holder.Unlock(t.Context()))
}

// TestKeysLeftByCutOffClientAreCleanedUp: a waiter that gives up and a
// holder whose Unlock fails while cut off from etcd leave keys behind; once
// the network heals they must go, although the session lives on (a key left
// in line would otherwise end up holding the lock for nobody).
func TestKeysLeftByCutOffClientAreCleanedUp(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	count := func() int64 {
		resp, err := direct.Get(t.Context(), "/janitor/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		return resp.Count
	}
	other := mutex.New(testutil.Session(t, direct, 10), "/janitor/lock")
	s := testutil.Session(t, es.ProxyClient(t, 0), 10)

	// A waiter gives up while cut off.
	require.NoError(t, other.Lock(t.Context()))
	waiter := mutex.New(s, "/janitor/lock")
	got := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { got <- waiter.Lock(ctx) }()
	require.Eventually(t, func() bool { return count() == 2 }, 5*time.Second, 10*time.Millisecond)
	es.Member(0).Blackhole()
	cancel()
	require.ErrorIs(t, <-got, context.Canceled)
	require.Equal(t, int64(2), count(), "cut off: the waiter's key is still there")
	es.Member(0).Unblackhole()
	require.Eventually(t, func() bool { return count() == 1 }, 15*time.Second, 20*time.Millisecond, "the waiter's key must be deleted once etcd answers")
	require.NoError(t, other.Unlock(t.Context()))

	// A holder's Unlock fails while cut off.
	holder := mutex.New(s, "/janitor/lock")
	require.NoError(t, holder.Lock(t.Context()))
	es.Member(0).Blackhole()
	uctx, ucancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	require.Error(t, holder.Unlock(uctx))
	ucancel()
	es.Member(0).Unblackhole()
	require.Eventually(t, func() bool { return count() == 0 }, 15*time.Second, 20*time.Millisecond, "the held key must be deleted once etcd answers")
	select {
	case <-s.Done():
		t.Fatal("the session should have survived the short cut")
	default:
	}
	require.NoError(t, other.Lock(t.Context()))
	require.NoError(t, other.Unlock(t.Context()))
}

// TestFailedUnlockRetiresKey: after an Unlock whose delete may still be on
// its way to etcd, the handle's next Lock must use another key, so that the
// late delete cannot end the new hold.
func TestFailedUnlockRetiresKey(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	m := mutex.New(testutil.Session(t, es.ProxyClient(t, 0), 10), "/retire/lock")
	require.NoError(t, m.Lock(t.Context()))
	old := m.Key()
	es.Member(0).Blackhole()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	require.Error(t, m.Unlock(ctx))
	cancel()
	es.Member(0).Unblackhole()

	require.NoError(t, m.Lock(t.Context()))
	require.NotEqual(t, old, m.Key(), "a key whose delete may arrive late must not be reused")
	// The old key is deleted (by the late request or the janitor); the new
	// hold stays.
	require.Eventually(t, func() bool {
		return slices.Equal(testutil.Keys(t, es.Client(), "/retire/"), []string{m.Key()})
	}, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, m.Err())
	require.NoError(t, m.Unlock(t.Context()))
	require.Empty(t, testutil.Keys(t, es.Client(), "/retire/"))
}

// TestConcurrentUnlock: two Unlocks of one hold race; exactly one
// releases, the other gets ErrNotLocked, and the handle's turn is given
// back exactly once.
func TestConcurrentUnlock(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	m := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	for range 20 {
		require.NoError(t, m.Lock(t.Context()))
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- m.Unlock(t.Context()) }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("Unlock, Unlock = %v, %v: want exactly one nil", e1, e2)
		}
		require.True(t, errors.Is(e1, mutex.ErrNotLocked) || errors.Is(e2, mutex.ErrNotLocked))
	}
	// The turn was given back once per hold: the handle locks again, and
	// while it holds, another goroutine's TryLock through it is refused.
	require.NoError(t, m.Lock(t.Context()))
	require.ErrorIs(t, m.TryLock(t.Context()), mutex.ErrLocked)
	require.NoError(t, m.Unlock(t.Context()))
}

// TestFailedLockRetiresKey: a Lock that gave up while cut off leaves its key
// to the session's janitor. The handle's next Lock must use another key:
// joining the old one would take it back from the janitor, and it would
// stay in line, ahead of others, for as long as that Join waited on a slow
// member (chaos L5 saw stalls of 7 s).
func TestFailedLockRetiresKey(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	other := mutex.New(testutil.Session(t, direct, 10), "/retirelock/lock")
	waiter := mutex.New(testutil.Session(t, es.ProxyClient(t, 0), 10), "/retirelock/lock")
	require.NoError(t, other.Lock(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	var old string
	require.Eventually(t, func() bool {
		keys := testutil.Keys(t, direct, "/retirelock/")
		for _, k := range keys {
			if k != other.Key() {
				old = k
			}
		}
		return len(keys) == 2
	}, 5*time.Second, 10*time.Millisecond)
	es.Member(0).Blackhole()
	cancel()
	require.ErrorIs(t, <-got, context.Canceled)
	es.Member(0).Unblackhole()
	require.NoError(t, other.Unlock(t.Context()))

	require.NoError(t, waiter.Lock(t.Context()))
	require.NotEqual(t, old, waiter.Key(), "a key left to the janitor must not be joined again")
	require.NoError(t, waiter.Unlock(t.Context()))
	require.Eventually(t, func() bool { return len(testutil.Keys(t, direct, "/retirelock/")) == 0 },
		15*time.Second, 20*time.Millisecond, "the janitor deletes the old key")
}
