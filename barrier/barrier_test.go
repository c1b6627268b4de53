package barrier_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// waitAll fails the test if errc does not deliver n nil errors within d.
func waitAll(t *testing.T, errc <-chan error, n int, d time.Duration, what string) {
	t.Helper()
	timeout := time.After(d)
	for range n {
		select {
		case err := <-errc:
			require.NoError(t, err, what)
		case <-timeout:
			t.Fatalf("%s: not all returned within %v", what, d)
		}
	}
}

// noneWithin fails the test if errc delivers anything within d.
func noneWithin(t *testing.T, errc <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-errc:
		t.Fatalf("%s: returned early (%v)", what, err)
	case <-time.After(d):
	}
}

func TestBarrierHoldReleaseWait(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	b := barrier.New(cli, pfx+"b", barrier.WithValue("deployer"))
	ctx := t.Context()

	require.NoError(t, b.Wait(ctx), "a barrier never held does not block")
	require.NoError(t, b.Hold(ctx))
	require.NoError(t, b.Hold(ctx), "holding twice is a no-op")
	resp, err := cli.Get(ctx, b.Key())
	require.NoError(t, err)
	require.Equal(t, "deployer", string(resp.Kvs[0].Value))

	errc := make(chan error, 3)
	for range 3 {
		w := barrier.New(testutil.Client(t, srv), pfx+"b")
		go func() { errc <- w.Wait(ctx) }()
	}
	noneWithin(t, errc, 300*time.Millisecond, "Wait while held")
	require.NoError(t, b.Release(ctx))
	waitAll(t, errc, 3, 10*time.Second, "Wait after Release")
	require.NoError(t, b.Release(ctx), "releasing twice is a no-op")

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.NoError(t, b.Hold(ctx))
	require.ErrorIs(t, b.Wait(cctx), context.DeadlineExceeded)
	require.NoError(t, b.Release(ctx))
}

// TestBarrierNobodyPassesEarly runs rounds of hold / wait / release with
// distractions in between (the key rewritten, history compacted) and checks
// that no waiter ever returns before the release.
func TestBarrierNobodyPassesEarly(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	b := barrier.New(cli, pfx+"b")
	ctx := t.Context()
	for round := range 5 {
		require.NoError(t, b.Hold(ctx))
		var released atomic.Bool
		errc := make(chan error, 4)
		for range 4 {
			w := barrier.New(testutil.Client(t, srv), pfx+"b")
			go func() {
				err := w.Wait(ctx)
				if err == nil && !released.Load() {
					err = fmt.Errorf("round %d: Wait returned before Release", round)
				}
				errc <- err
			}()
		}
		// Rewriting the key is not a release; neither is a compaction.
		_, err := cli.Put(ctx, b.Key(), fmt.Sprint(round))
		require.NoError(t, err)
		_, err = srv.Compact(ctx)
		require.NoError(t, err)
		noneWithin(t, errc, 100*time.Millisecond, "Wait while held")
		released.Store(true)
		require.NoError(t, b.Release(ctx))
		waitAll(t, errc, 4, 10*time.Second, "Wait after Release")
	}
}

// TestBarrierWithSession: a barrier held on a session is released when the
// holder's session ends.
func TestBarrierWithSession(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, testutil.Client(t, srv), 10)
	require.NoError(t, barrier.New(cli, pfx+"b", barrier.WithSession(s)).Hold(t.Context()))
	errc := make(chan error, 1)
	go func() { errc <- barrier.New(cli, pfx+"b").Wait(t.Context()) }()
	noneWithin(t, errc, 200*time.Millisecond, "Wait while held")
	_, err := cli.Revoke(t.Context(), s.Lease())
	require.NoError(t, err)
	waitAll(t, errc, 1, 10*time.Second, "Wait after the holder's lease was revoked")
}

// TestWaitSurvivesLeaderLoss cuts the waiters' member off from its peers so
// that it loses its leader and cancels their watches, restarts the peers,
// and compacts history meanwhile: Wait must take none of this for a
// release, and must still see the release that follows. A double barrier's
// Enter and Leave go through the same.
func TestWaitSurvivesLeaderLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewCluster(t, 3)
	ctx := t.Context()
	// The waiters talk to member 0 only.
	wcli := c.ProxyClient(t, 0)
	b := barrier.New(c.Client(), "/lost/b")
	require.NoError(t, b.Hold(ctx))
	var released atomic.Bool
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			err := barrier.New(wcli, "/lost/b").Wait(ctx)
			if err == nil && !released.Load() {
				err = fmt.Errorf("Wait returned before Release")
			}
			errc <- err
		}()
	}
	ds := testutil.Session(t, wcli, 30)
	d := barrier.NewDouble(ds, "/lost/d", 2)
	enterc := make(chan error, 1)
	go func() { enterc <- d.Enter(ctx) }()
	require.Eventually(t, func() bool {
		resp, err := c.Client().Get(ctx, "/lost/d/waiters/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 1
	}, 10*time.Second, 10*time.Millisecond)

	// A probe watch of our own, like the waiters', to see the fault bite.
	pctx, stopProbe := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stopProbe()
	probe := wcli.Watch(pctx, "/lost/probe")
	c.Member(1).Stop()
	c.Member(2).Stop()
	// Member 0 has no quorum: after three election timeouts without a
	// leader it cancels the watches that require one.
	select {
	case _, ok := <-probe:
		for ok {
			_, ok = <-probe
		}
	case <-time.After(20 * time.Second):
		t.Fatal("member 0 did not cancel its watches")
	}
	require.NoError(t, c.Member(1).Restart(ctx))
	require.NoError(t, c.Member(2).Restart(ctx))
	_, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	for i := range 5 {
		_, err := c.Client().Put(ctx, "/lost/other", fmt.Sprint(i))
		require.NoError(t, err)
	}
	_, err = c.Compact(ctx)
	require.NoError(t, err)
	noneWithin(t, errc, 500*time.Millisecond, "Wait after leader loss")
	noneWithin(t, enterc, 0, "Enter after leader loss")

	released.Store(true)
	require.NoError(t, b.Release(ctx))
	waitAll(t, errc, 2, 15*time.Second, "Wait after Release")

	other := barrier.NewDouble(testutil.Session(t, c.Client(), 30), "/lost/d", 2)
	require.NoError(t, other.Enter(ctx))
	waitAll(t, enterc, 1, 15*time.Second, "Enter once the second participant came")
	leavec := make(chan error, 1)
	go func() { leavec <- d.Leave(ctx) }()
	require.NoError(t, other.Leave(ctx))
	waitAll(t, leavec, 1, 15*time.Second, "Leave")
}

func TestBadInput(t *testing.T) {
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	require.PanicsWithValue(t, "barrier: empty name", func() { barrier.New(cli, "") })
	require.Panics(t, func() { barrier.New(nil, "x") })
	require.Panics(t, func() { barrier.NewDouble(s, "/", 2) })
	require.Panics(t, func() { barrier.NewDouble(nil, "x", 2) })
	require.PanicsWithValue(t, "barrier: count 0 < 1", func() { barrier.NewDouble(s, "x", 0) })
	require.PanicsWithValue(t, "barrier: count -1 < 1", func() { barrier.NewDouble(s, "x", -1) })
	require.PanicsWithValue(t, "barrier: WithSession(nil)", func() { barrier.WithSession(nil) })
	require.PanicsWithValue(t, "barrier: NewDouble does not take WithSession: a participant's key lives on the session given to NewDouble",
		func() { barrier.NewDouble(s, "x", 2, barrier.WithSession(s)) })
	require.Panics(t, func() { barrier.NewDouble(s, "x", 0) })
}

// waitHeld holds the barrier on name through cli and waits on it.
func waitHeld(ctx context.Context, cli *clientv3.Client, name string) error {
	b := barrier.New(cli, name)
	if err := b.Hold(ctx); err != nil {
		return err
	}
	return b.Wait(ctx)
}

// TestWaitEndsWhenClientCloses: Wait on a context that never ends returns
// an error once its client is closed, instead of blocking forever.
func TestWaitEndsWhenClientCloses(t *testing.T) {
	t.Parallel()
	testutil.RequireEndsOnClose(t, srv, waitHeld)
}

// TestWaitEndsWhenRefused: Wait returns etcd's refusal when its watch
// cannot be opened again, instead of trying for as long as ctx lasts.
func TestWaitEndsWhenRefused(t *testing.T) {
	t.Parallel()
	testutil.RequireEndsWhenRefused(t, waitHeld)
}
