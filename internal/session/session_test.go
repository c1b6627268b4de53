package session_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/session"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const bound = 30 * time.Second

// busy starts every goroutine a state can run: the tracker, the keeper, and
// a janitor with a key it cannot delete yet (it shows up again and again
// until far in the future).
func busy(t *testing.T, st *session.State, pfx string) {
	t.Helper()
	<-st.Tracker().Ready()
	st.KeepStream(pfx + "idle")
	st.DeferDeleteUntil(pfx+"gone", 0, time.Now().Add(time.Hour))
}

func TestOfSharesOneState(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	st := session.Of(s)
	require.Same(t, st, session.Of(s))
	require.Same(t, st.Tracker(), session.Of(s).Tracker(), "one tracker serves every hold on a session")
	require.Same(t, st, session.Lookup(s))
}

func TestStateEndsWithSession(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	require.NoError(t, err)
	st := session.Of(s)
	busy(t, st, pfx)
	tr := st.Tracker()
	require.NoError(t, s.Close())
	testutil.WaitClosed(t, st.Done(), bound, "the state of a closed session")
	require.Nil(t, session.Lookup(s), "an ended state leaves the registry")
	require.ErrorIs(t, tr.Err(), errs.SessionExpired, "holds learn that the session ended")
}

func TestStateEndsWithClient(t *testing.T) {
	t.Parallel()
	cli := srv.NewClient(t)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	require.NoError(t, err)
	st := session.Of(s)
	busy(t, st, "/test/"+t.Name()+"/")
	require.NoError(t, cli.Close())
	testutil.WaitClosed(t, st.Done(), bound, "the state of a session whose client closed")
	require.Nil(t, session.Lookup(s))
}

func TestCloseStopsEverything(t *testing.T) {
	// Not parallel: it looks at every goroutine of the process.
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	st := session.Of(s)
	busy(t, st, pfx)
	st.Close()
	require.Nil(t, session.Lookup(s))
	select {
	case <-s.Done():
		t.Fatal("Close ended the session, which it only borrows")
	default:
	}
	// Checked at once, not retried: Close must return after them.
	buf := make([]byte, 1<<22)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"internal/session.", "internal/lease.(*Tracker).run"} {
		require.NotContains(t, stacks, fn, "Close returns after every goroutine of the state")
	}
	require.NotSame(t, st, session.Of(s), "a live session gets a new state after Close")
}

func TestTrackerReplacedAfterLoss(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	st := session.Of(s)
	tr := st.Tracker()
	<-tr.Ready()
	tr.Stop() // as a tracker that gave up on the lease exits
	next := st.Tracker()
	require.NotSame(t, tr, next, "a live session gets a new tracker")
	testutil.WaitClosed(t, next.Ready(), bound, "the new tracker's first probe")
}

func TestJanitor(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	st := session.Of(s)

	put := func(key string) int64 {
		resp, err := cli.Put(t.Context(), key, "", clientv3.WithLease(s.Lease()))
		require.NoError(t, err)
		return resp.Header.Revision
	}
	exists := func(key string) bool {
		resp, err := cli.Get(t.Context(), key, clientv3.WithCountOnly())
		require.NoError(t, err)
		return resp.Count > 0
	}

	rev := put(pfx + "guarded")
	st.DeferDelete(pfx+"guarded", rev)
	put(pfx + "unknown")
	st.DeferDelete(pfx+"unknown", 0)
	require.Eventually(t, func() bool { return !exists(pfx+"guarded") && !exists(pfx+"unknown") },
		bound, 20*time.Millisecond, "the janitor deletes the keys")

	// A guarded delete never hits a newer incarnation of the key.
	first := put(pfx + "old")
	_, err := cli.Delete(t.Context(), pfx+"old")
	require.NoError(t, err)
	put(pfx + "old")
	st.DeferDelete(pfx+"old", first)
	// Lingering: a key that shows up again is deleted again.
	st.DeferDeleteUntil(pfx+"late", 0, time.Now().Add(time.Hour))
	put(pfx + "late")
	require.Eventually(t, func() bool { return !exists(pfx + "late") }, bound, 20*time.Millisecond)
	require.True(t, exists(pfx+"old"), "the janitor deleted a newer incarnation")
	put(pfx + "late")
	require.Eventually(t, func() bool { return !exists(pfx + "late") }, bound, 20*time.Millisecond,
		"a lingering key is deleted each time it shows up")

	// Forget hands the key back to its joiner.
	st.Forget(pfx + "late")
	put(pfx + "late")
	put(pfx + "sync")
	st.DeferDelete(pfx+"sync", 0) // a later sweep, to know the janitor went past
	require.Eventually(t, func() bool { return !exists(pfx + "sync") }, bound, 20*time.Millisecond)
	require.True(t, exists(pfx+"late"), "a forgotten key is not deleted")
	_, err = cli.Delete(t.Context(), pfx, clientv3.WithPrefix())
	require.NoError(t, err)
}
