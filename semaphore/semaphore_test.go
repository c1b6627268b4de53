package semaphore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// waitKeys waits until n keys are under prefix.
func waitKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, prefix)) == n }, 5*time.Second, 5*time.Millisecond, "want %d keys under %s", n, prefix)
}

// acquireAsync starts m.Acquire(ctx, n) and returns where its result goes.
func acquireAsync(t *testing.T, ctx context.Context, m *semaphore.Semaphore, n int) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() { got <- m.Acquire(ctx, n) }()
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

// result waits (boundedly) for an Acquire started by acquireAsync.
func result(t *testing.T, got <-chan error) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func TestAcquireRelease(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	m := semaphore.New(s, pfx+"sem", 3, semaphore.WithValue("host-a"))
	ctx := t.Context()

	require.ErrorIs(t, m.Err(), semaphore.ErrNotHeld)
	require.Zero(t, m.Token())
	testutil.WaitClosed(t, m.Done(), time.Second, "Done before the first Acquire")

	require.NoError(t, m.Acquire(ctx, 2))
	require.NoError(t, m.Err())
	require.Equal(t, []string{m.Key()}, testutil.Keys(t, cli, pfx))
	require.Contains(t, m.Key(), fmt.Sprintf("%ssem/%x_", pfx, int64(s.Lease())), "key starts with the lease id in hex")
	resp, err := cli.Get(ctx, m.Key())
	require.NoError(t, err)
	require.Equal(t, resp.Kvs[0].CreateRevision, m.Token(), "Token is the key's create revision")
	require.Equal(t, int64(s.Lease()), resp.Kvs[0].Lease, "the key is on the session's lease")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(resp.Kvs[0].Value, &rec))
	require.Equal(t, map[string]any{"weight": 2.0, "limit": 3.0, "value": "host-a"}, rec)
	done := m.Done()

	require.NoError(t, m.Release(ctx))
	testutil.WaitClosed(t, done, time.Second, "Done after Release")
	require.ErrorIs(t, m.Err(), semaphore.ErrNotHeld)
	require.Empty(t, testutil.Keys(t, cli, pfx))
	require.ErrorIs(t, m.Release(ctx), semaphore.ErrNotHeld, "second Release")
}

// TestHoldersShareUpToLimit fills the semaphore with holders of different
// weights and sessions, including two handles on one session, and checks
// that exactly the ones that fit get in.
func TestHoldersShareUpToLimit(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	s := testutil.Session(t, cli, 10)
	a := semaphore.New(s, pfx+"sem", 4)
	b := semaphore.New(s, pfx+"sem", 4) // same session: a separate participant
	c := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 4)

	require.NoError(t, a.Acquire(ctx, 1))
	require.NoError(t, b.Acquire(ctx, 2))
	require.ErrorIs(t, c.TryAcquire(ctx, 2), semaphore.ErrNoPermits, "1+2+2 > 4")
	require.Len(t, testutil.Keys(t, cli, pfx), 2, "a failed TryAcquire leaves no key")
	require.NoError(t, c.TryAcquire(ctx, 1), "1+2+1 fits")
	require.ErrorIs(t, a.TryAcquire(ctx, 1), semaphore.ErrNoPermits, "a handle holds one grant at a time")
	got := acquireAsync(t, ctx, a, 3) // waits: Acquire on a handle that holds waits for its Release
	pending(t, got, "Acquire on a handle that holds")
	require.NoError(t, a.Release(ctx))
	pending(t, got, "Acquire(3) with 3 of 4 held")
	require.NoError(t, b.Release(ctx))
	require.NoError(t, result(t, got), "Acquire(3) with 1 of 4 held")
	require.NoError(t, a.Release(ctx))
	require.NoError(t, c.Release(ctx))
}

// TestFIFO checks the order of grants: a request waits for everyone ahead
// of it, even when it would fit in the permits that are free, so a big
// request at the head of the line is not starved by small ones behind it.
func TestFIFO(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	open := func() *semaphore.Semaphore { return semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 3) }
	holder := open()
	require.NoError(t, holder.Acquire(ctx, 1))

	// The line: holder (1), big (3), s1 (2), s2 (2), s3 (1). Each joins once
	// the one before is visible, so the order is known.
	reqs := []struct {
		name string
		n    int
	}{{"big", 3}, {"s1", 2}, {"s2", 2}, {"s3", 1}}
	m := map[string]*semaphore.Semaphore{}
	got := map[string]<-chan error{}
	for i, r := range reqs {
		m[r.name] = open()
		got[r.name] = acquireAsync(t, ctx, m[r.name], r.n)
		waitKeys(t, cli, pfx, i+2)
	}
	// 2 permits free: s1 or s3 would fit, but big is ahead of them.
	require.ErrorIs(t, open().TryAcquire(ctx, 1), semaphore.ErrNoPermits, "TryAcquire must not overtake the line")
	for _, r := range reqs {
		pending(t, got[r.name], r.name)
	}

	require.NoError(t, holder.Release(ctx))
	require.NoError(t, result(t, got["big"]))
	for _, name := range []string{"s1", "s2", "s3"} {
		pending(t, got[name], name+" while big holds all 3")
	}

	require.NoError(t, m["big"].Release(ctx))
	require.NoError(t, result(t, got["s1"]))
	// 1 permit free: s3 would fit, but s2 (2) is ahead of it.
	pending(t, got["s2"], "s2 with 1 permit free")
	pending(t, got["s3"], "s3 behind s2")

	require.NoError(t, m["s1"].Release(ctx))
	require.NoError(t, result(t, got["s2"]))
	require.NoError(t, result(t, got["s3"]), "s2 (2) and s3 (1) fit together")
	require.NoError(t, m["s2"].Release(ctx))
	require.NoError(t, m["s3"].Release(ctx))
}

func TestLimitMismatch(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	three := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 3)
	five := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 5)
	waiter := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 3)

	require.NoError(t, three.Acquire(ctx, 3))
	require.ErrorIs(t, five.Acquire(ctx, 1), semaphore.ErrLimitMismatch, "a holder has limit 3")
	require.ErrorIs(t, five.TryAcquire(ctx, 1), semaphore.ErrLimitMismatch)
	require.Equal(t, []string{three.Key()}, testutil.Keys(t, cli, pfx), "a mismatched request leaves no key")

	// A waiter with the old limit: the new limit is still refused.
	got := acquireAsync(t, ctx, waiter, 1)
	waitKeys(t, cli, pfx, 2)
	require.NoError(t, three.Release(ctx))
	require.NoError(t, result(t, got))
	require.ErrorIs(t, five.Acquire(ctx, 5), semaphore.ErrLimitMismatch, "a holder with limit 3 remains")
	require.NoError(t, waiter.Release(ctx))

	// Everyone with the old limit gone: the new limit takes over.
	require.NoError(t, five.Acquire(ctx, 5))
	require.ErrorIs(t, three.Acquire(ctx, 1), semaphore.ErrLimitMismatch)
	require.NoError(t, five.Release(ctx))
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	ctx := t.Context()
	m := semaphore.New(s, pfx+"sem", 3)
	tests := []struct {
		name string
		m    *semaphore.Semaphore
		n    int
		want error
	}{
		{"zero weight", m, 0, semaphore.ErrInvalidWeight},
		{"negative weight", m, -1, semaphore.ErrInvalidWeight},
		{"weight above limit", m, 4, semaphore.ErrInvalidWeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Returned at once, not after a wait that could never end.
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := tt.m.Acquire(short, tt.n)
			require.ErrorIs(t, err, tt.want, "Acquire(%d)", tt.n)
			require.NoError(t, short.Err(), "Acquire(%d) waited for its context", tt.n)
			require.ErrorIs(t, tt.m.TryAcquire(ctx, tt.n), tt.want, "TryAcquire(%d)", tt.n)
		})
	}
	require.Empty(t, testutil.Keys(t, cli, pfx))
	require.NoError(t, m.Acquire(ctx, 3), "the handle is usable after bad requests")
	require.NoError(t, m.Release(ctx))
	require.PanicsWithValue(t, "semaphore: empty name", func() { semaphore.New(s, "", 1) })
	require.PanicsWithValue(t, "semaphore: limit 0 < 1", func() { semaphore.New(s, pfx+"sem", 0) })
	require.PanicsWithValue(t, "semaphore: limit -2 < 1", func() { semaphore.New(s, pfx+"sem", -2) })
	require.Panics(t, func() { semaphore.New(s, "/", 1) })
	require.Panics(t, func() { semaphore.New(nil, "x", 1) })
}

func TestCancelledAcquireLeavesNoKey(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 2)
	ws := testutil.Session(t, cli, 10)
	waiter := semaphore.New(ws, pfx+"sem", 2)
	behind := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 2)
	require.NoError(t, holder.Acquire(t.Context(), 2))

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	got := acquireAsync(t, t.Context(), behind, 1)
	waitKeys(t, cli, pfx, 2)
	require.ErrorIs(t, waiter.Acquire(ctx, 2), context.DeadlineExceeded)
	left := testutil.Keys(t, cli, pfx)
	require.Len(t, left, 2, "the cancelled waiter's key is gone")
	require.Equal(t, holder.Key(), left[0])
	require.NotContains(t, left[1], fmt.Sprintf("%x_", int64(ws.Lease())), "the key left is the one behind's")
	require.ErrorIs(t, waiter.Acquire(ctx, 1), context.DeadlineExceeded, "already cancelled")

	// The waiter behind the cancelled one is not blocked by it.
	require.NoError(t, holder.Release(t.Context()))
	require.NoError(t, result(t, got))
	require.NoError(t, waiter.Acquire(t.Context(), 1), "the handle is usable again")
	require.NoError(t, waiter.Release(t.Context()))
	require.NoError(t, behind.Release(t.Context()))
}

// TestAcquireCancelledMidRequest cancels Acquire while its requests are in
// flight (responses are delayed), the case where the key may or may not
// have been written. Either way nothing must be left.
func TestAcquireCancelledMidRequest(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	m := semaphore.New(testutil.Session(t, es.ProxyClient(t, 0), 10), "/mid/sem", 2)
	es.Member(0).DelayResponses(400*time.Millisecond, 0)
	for i := range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(50+60*i)*time.Millisecond)
		err := m.Acquire(ctx, 1)
		cancel()
		if err == nil {
			require.NoError(t, m.Release(t.Context()))
			continue
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Empty(t, testutil.Keys(t, direct, "/mid/"), "trial %d left a key", i)
	}
	es.Member(0).Undelay()
}

// TestExpiredWaiterNeverWins revokes a waiter's lease, or deletes its key,
// while it waits; the holder then releases. The waiter must fail, never be
// granted permits it no longer has a key for (etcd#16221 in etcd's RWMutex).
func TestExpiredWaiterNeverWins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want error
	}{{"lease revoked", semaphore.ErrSessionExpired}, {"key deleted", semaphore.ErrLost}} {
		t.Run(tc.name, func(t *testing.T) {
			cli := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, cli)
			holder := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 2)
			ws := testutil.Session(t, testutil.Client(t, srv), 10)
			waiter := semaphore.New(ws, pfx+"sem", 2)
			require.NoError(t, holder.Acquire(t.Context(), 2))
			got := acquireAsync(t, t.Context(), waiter, 1)
			waitKeys(t, cli, pfx, 2)
			if tc.want == semaphore.ErrSessionExpired {
				_, err := cli.Revoke(t.Context(), ws.Lease())
				require.NoError(t, err)
			} else {
				_, err := cli.Delete(t.Context(), testutil.Keys(t, cli, pfx)[1])
				require.NoError(t, err)
			}
			require.NoError(t, holder.Release(t.Context()))
			require.ErrorIs(t, result(t, got), tc.want)
			require.ErrorIs(t, waiter.Err(), semaphore.ErrNotHeld)
			require.Empty(t, testutil.Keys(t, cli, pfx))
		})
	}
}

func TestGuardedTxn(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })
	m := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 2)
	resp, err := m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "nothing held: the guarded write must fail")
	require.NoError(t, m.Acquire(t.Context(), 1))
	resp, err = m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.NoError(t, m.Release(t.Context()))
}

// TestForeignKeyHoldsEverything puts a key that is not a participant's
// under the semaphore (an "etcdctl lock" on the same name): it counts as
// holding every permit rather than being ignored.
func TestForeignKeyHoldsEverything(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	_, err := cli.Put(ctx, pfx+"sem/foreign", "")
	require.NoError(t, err)
	m := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 3)
	require.ErrorIs(t, m.TryAcquire(ctx, 1), semaphore.ErrNoPermits)
	got := acquireAsync(t, ctx, m, 1)
	pending(t, got, "Acquire behind a foreign key")
	_, err = cli.Delete(ctx, pfx+"sem/foreign")
	require.NoError(t, err)
	require.NoError(t, result(t, got))
	require.NoError(t, m.Release(ctx))
}
