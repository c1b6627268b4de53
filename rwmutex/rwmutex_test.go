package rwmutex_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
)

// waitKeys waits until n keys are under prefix.
func waitKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, prefix)) == n }, 5*time.Second, 5*time.Millisecond, "want %d keys under %s", n, prefix)
}

// async runs a lock call in the background and returns where its result
// goes.
func async(f func(context.Context) error, ctx context.Context) <-chan error {
	got := make(chan error, 1)
	go func() { got <- f(ctx) }()
	return got
}

// pending fails the test if got has a result now or within a short while.
func pending(t *testing.T, got <-chan error, what string) {
	t.Helper()
	select {
	case err := <-got:
		t.Fatalf("%s returned %v, want it to wait", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

// result waits (boundedly) for a call started by async.
func result(t *testing.T, got <-chan error) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("lock call did not return")
		return nil
	}
}

func TestLockUnlock(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	m := rwmutex.New(s, pfx+"lock", rwmutex.WithValue("host-a"))
	ctx := t.Context()

	require.ErrorIs(t, m.Err(), rwmutex.ErrNotLocked)
	require.Zero(t, m.Token())
	testutil.WaitClosed(t, m.Done(), time.Second, "Done before the first lock")

	for _, mode := range []struct {
		name   string
		lock   func(context.Context) error
		unlock func(context.Context) error
		other  func(context.Context) error // the wrong unlock
		sub    string
	}{
		{"write", m.Lock, m.Unlock, m.RUnlock, "write/"},
		{"read", m.RLock, m.RUnlock, m.Unlock, "read/"},
	} {
		require.NoError(t, mode.lock(ctx), mode.name)
		require.NoError(t, m.Err())
		require.Equal(t, mode.name == "write", m.Writing())
		require.Equal(t, []string{m.Key()}, testutil.Keys(t, cli, pfx))
		require.Contains(t, m.Key(), fmt.Sprintf("%slock/%s%x_", pfx, mode.sub, int64(s.Lease())), "key layout")
		resp, err := cli.Get(ctx, m.Key())
		require.NoError(t, err)
		require.Equal(t, resp.Kvs[0].CreateRevision, m.Token(), "Token is the key's create revision")
		require.Equal(t, "host-a", string(resp.Kvs[0].Value))
		done := m.Done()
		require.ErrorIs(t, mode.other(ctx), rwmutex.ErrNotLocked, "%s: unlock of the other mode", mode.name)
		require.NoError(t, m.Err(), "a wrong unlock leaves the hold alone")

		require.NoError(t, mode.unlock(ctx))
		testutil.WaitClosed(t, done, time.Second, "Done after unlock")
		require.ErrorIs(t, m.Err(), rwmutex.ErrNotLocked)
		require.Empty(t, testutil.Keys(t, cli, pfx))
		require.ErrorIs(t, mode.unlock(ctx), rwmutex.ErrNotLocked, "second unlock")
	}
}

// TestReadersShareWritersExclude checks who may hold together: readers
// with readers, a writer with nobody.
func TestReadersShareWritersExclude(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	open := func() *rwmutex.RWMutex { return rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock") }
	r1, r2, r3, w := open(), open(), open(), open()

	require.NoError(t, r1.RLock(ctx))
	require.NoError(t, r2.TryRLock(ctx), "readers share")
	require.NoError(t, r3.RLock(ctx), "readers share")
	require.ErrorIs(t, w.TryLock(ctx), rwmutex.ErrLocked, "a writer waits for readers")
	require.Len(t, testutil.Keys(t, cli, pfx), 3, "a failed TryLock leaves no key")
	for _, r := range []*rwmutex.RWMutex{r1, r2, r3} {
		require.NoError(t, r.RUnlock(ctx))
	}

	require.NoError(t, w.Lock(ctx))
	require.ErrorIs(t, r1.TryRLock(ctx), rwmutex.ErrLocked, "a reader waits for a writer")
	require.ErrorIs(t, r2.TryLock(ctx), rwmutex.ErrLocked, "a writer waits for a writer")
	got := async(r1.RLock, ctx)
	pending(t, got, "RLock while a writer holds")
	require.NoError(t, w.Unlock(ctx))
	require.NoError(t, result(t, got))
	require.NoError(t, r1.RUnlock(ctx))
}

// TestFairness checks the line's order: a writer waits for the readers
// ahead of it; readers that come after a waiting writer queue behind it
// instead of overtaking it (no writer starvation); readers behind a writer
// are let in together when it unlocks; a writer behind them waits for all.
func TestFairness(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	open := func() *rwmutex.RWMutex { return rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock") }
	r1, w1, r2, r3, w2 := open(), open(), open(), open(), open()

	require.NoError(t, r1.RLock(ctx))
	gw1 := async(w1.Lock, ctx)
	waitKeys(t, cli, pfx, 2)
	gr2 := async(r2.RLock, ctx)
	waitKeys(t, cli, pfx, 3)
	gr3 := async(r3.RLock, ctx)
	waitKeys(t, cli, pfx, 4)
	gw2 := async(w2.Lock, ctx)
	waitKeys(t, cli, pfx, 5)

	// Only readers hold, yet r2 and r3 wait: w1 is ahead of them.
	pending(t, gw1, "w1 behind r1")
	pending(t, gr2, "r2 behind w1")
	pending(t, gr3, "r3 behind w1")
	require.ErrorIs(t, open().TryRLock(ctx), rwmutex.ErrLocked, "TryRLock must not overtake a waiting writer")

	require.NoError(t, r1.RUnlock(ctx))
	require.NoError(t, result(t, gw1))
	pending(t, gr2, "r2 while w1 holds")

	require.NoError(t, w1.Unlock(ctx))
	require.NoError(t, result(t, gr2), "r2 after w1")
	require.NoError(t, result(t, gr3), "r3 holds together with r2")
	pending(t, gw2, "w2 behind r2 and r3")

	require.NoError(t, r2.RUnlock(ctx))
	pending(t, gw2, "w2 behind r3")
	require.NoError(t, r3.RUnlock(ctx))
	require.NoError(t, result(t, gw2))
	require.NoError(t, w2.Unlock(ctx))
}

func TestTwoHandlesOnOneSession(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	a, b := rwmutex.New(s, pfx+"lock"), rwmutex.New(s, pfx+"lock")
	ctx := t.Context()

	require.NoError(t, a.Lock(ctx))
	require.ErrorIs(t, b.TryRLock(ctx), rwmutex.ErrLocked)
	require.ErrorIs(t, b.TryLock(ctx), rwmutex.ErrLocked)
	require.NoError(t, a.Unlock(ctx))

	require.NoError(t, a.RLock(ctx))
	require.NoError(t, b.RLock(ctx), "two readers on one session")
	require.ErrorIs(t, a.TryLock(ctx), rwmutex.ErrLocked, "a handle holds one lock at a time")
	require.ErrorIs(t, a.TryRLock(ctx), rwmutex.ErrLocked, "a handle holds one lock at a time")
	require.NoError(t, a.RUnlock(ctx))
	require.ErrorIs(t, a.TryLock(ctx), rwmutex.ErrLocked, "b's read lock on the same session excludes a's write lock")
	require.NoError(t, b.RUnlock(ctx))
}

func TestCancelledLockLeavesNoKey(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	open := func() *rwmutex.RWMutex { return rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock") }
	reader, writer, late := open(), open(), open()
	require.NoError(t, reader.RLock(t.Context()))

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, writer.Lock(ctx), context.DeadlineExceeded, "Lock behind a reader")
	require.Equal(t, []string{reader.Key()}, testutil.Keys(t, cli, pfx))

	// A reader queued behind a writer, cancelled.
	gw := async(writer.Lock, t.Context())
	waitKeys(t, cli, pfx, 2)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, late.RLock(ctx2), context.DeadlineExceeded, "RLock behind a writer")
	require.Len(t, testutil.Keys(t, cli, pfx), 2)
	require.ErrorIs(t, late.RLock(ctx2), context.DeadlineExceeded, "already cancelled")

	require.NoError(t, reader.RUnlock(t.Context()))
	require.NoError(t, result(t, gw))
	require.NoError(t, writer.Unlock(t.Context()))
	require.NoError(t, late.RLock(t.Context()), "the handle is usable again")
	require.NoError(t, late.RUnlock(t.Context()))
}

// TestLockCancelledMidRequest cancels lock calls while their requests are
// in flight (responses are delayed), the case where the key may or may not
// have been written. Either way nothing must be left.
func TestLockCancelledMidRequest(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	m := rwmutex.New(testutil.Session(t, es.ProxyClient(t, 0), 10), "/mid/lock")
	es.Member(0).DelayResponses(400*time.Millisecond, 0)
	for i := range 6 {
		lock, unlock := m.Lock, m.Unlock
		if i%2 == 1 {
			lock, unlock = m.RLock, m.RUnlock
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(50+60*i)*time.Millisecond)
		err := lock(ctx)
		cancel()
		if err == nil {
			require.NoError(t, unlock(t.Context()))
			continue
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, testutil.Keys(t, direct, "/mid/"), "trial %d left a key", i)
	}
	es.Member(0).Undelay()
}

// TestExpiredWaiterNeverWins is etcd#16221: a waiter whose lease expired
// (or whose key was deleted) while it waited must not take the lock when
// the holder goes; etcd's recipe RWMutex lets it, and two writers hold.
func TestExpiredWaiterNeverWins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		write  bool
		revoke bool
		want   error
	}{
		{"writer lease revoked", true, true, rwmutex.ErrSessionExpired},
		{"writer key deleted", true, false, rwmutex.ErrLost},
		{"reader lease revoked", false, true, rwmutex.ErrSessionExpired},
		{"reader key deleted", false, false, rwmutex.ErrLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cli := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, cli)
			holder := rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock")
			ws := testutil.Session(t, testutil.Client(t, srv), 10)
			waiter := rwmutex.New(ws, pfx+"lock")
			lock := waiter.RLock
			if tc.write {
				lock = waiter.Lock
			}
			require.NoError(t, holder.Lock(t.Context()))
			got := async(lock, t.Context())
			waitKeys(t, cli, pfx, 2)
			if tc.revoke {
				_, err := cli.Revoke(t.Context(), ws.Lease())
				require.NoError(t, err)
			} else {
				_, err := cli.Delete(t.Context(), testutil.Keys(t, cli, pfx)[1])
				require.NoError(t, err)
			}
			require.NoError(t, holder.Unlock(t.Context()))
			err := result(t, got)
			require.Error(t, err, "the waiter must not take the lock")
			if tc.revoke {
				// The shared waiting core reports a revoked waiter as lost
				// when its guarded re-read fails before the lease tracker's
				// next probe, as expired after.
				require.True(t, errors.Is(err, rwmutex.ErrSessionExpired) || errors.Is(err, rwmutex.ErrLost), "err = %v", err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			require.ErrorIs(t, waiter.Err(), rwmutex.ErrNotLocked)
			require.Empty(t, testutil.Keys(t, cli, pfx))
		})
	}
}

func TestGuardedTxn(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })
	m := rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	resp, err := m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "not held: the guarded write must fail")
	for _, lock := range []func(context.Context) error{m.Lock, m.RLock} {
		require.NoError(t, lock(t.Context()))
		resp, err = m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
		require.NoError(t, err)
		require.True(t, resp.Succeeded)
		if m.Writing() {
			require.NoError(t, m.Unlock(t.Context()))
		} else {
			require.NoError(t, m.RUnlock(t.Context()))
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	require.PanicsWithValue(t, "rwmutex: empty name", func() { rwmutex.New(s, "") })
	require.Panics(t, func() { rwmutex.New(s, "/") })
	require.Panics(t, func() { rwmutex.New((*concurrency.Session)(nil), "x") })
}

// TestInteropWithEtcdRecipe shows that a coordkit RWMutex and etcd's
// recipe RWMutex on the same name follow one line: each one's writer
// excludes the other's readers and writers, and their readers share.
func TestInteropWithEtcdRecipe(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	ours := rwmutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	theirs := recipe.NewRWMutex(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"lock")
	// The recipe's calls take no context; they run in the background.
	call := func(f func() error) <-chan error { return async(func(context.Context) error { return f() }, ctx) }

	// Theirs writes: ours can neither read nor write, and reads once
	// theirs unlocks.
	require.NoError(t, theirs.Lock())
	require.ErrorIs(t, ours.TryRLock(ctx), rwmutex.ErrLocked)
	require.ErrorIs(t, ours.TryLock(ctx), rwmutex.ErrLocked)
	got := async(ours.RLock, ctx)
	waitKeys(t, cli, pfx, 2)
	pending(t, got, "our RLock while theirs writes")
	require.NoError(t, theirs.Unlock())
	require.NoError(t, result(t, got))

	// Readers share across the two.
	require.NoError(t, result(t, call(theirs.RLock)), "their RLock while ours reads")
	require.NoError(t, theirs.RUnlock())
	require.NoError(t, ours.RUnlock(ctx))

	// Ours writes: theirs can neither read nor write until ours unlocks.
	require.NoError(t, ours.Lock(ctx))
	theirsRead := call(theirs.RLock)
	waitKeys(t, cli, pfx, 2)
	pending(t, theirsRead, "their RLock while ours writes")
	require.NoError(t, ours.Unlock(ctx))
	require.NoError(t, result(t, theirsRead))
	require.ErrorIs(t, ours.TryLock(ctx), rwmutex.ErrLocked, "their reader excludes our writer")
	require.NoError(t, theirs.RUnlock())

	require.NoError(t, ours.Lock(ctx))
	theirsWrite := call(theirs.Lock)
	waitKeys(t, cli, pfx, 2)
	pending(t, theirsWrite, "their Lock while ours writes")
	require.NoError(t, ours.Unlock(ctx))
	require.NoError(t, result(t, theirsWrite))
	require.NoError(t, theirs.Unlock())
}
