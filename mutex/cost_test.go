package mutex_test

import (
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
)

// TestUncontendedLockIsOneTxn: with nobody else in line, Lock is one Txn,
// and Unlock a plain Delete.
func TestUncontendedLockIsOneTxn(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	m := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	require.NoError(t, m.Lock(t.Context())) // also waits for the lease's first confirmation
	require.NoError(t, m.Unlock(t.Context()))
	c.Txns.Store(0)
	for range 3 {
		require.NoError(t, m.Lock(t.Context()))
		require.NoError(t, m.Unlock(t.Context()))
	}
	require.Equal(t, int64(3), c.Txns.Load(), "Txns for 3 uncontended Lock+Unlock")
}

// TestContendedHandOffIsTwoTxns: a new handle's Lock that finds the lock
// held costs its joining Txn, which also reads the line, and, once the
// holder's key is deleted, one re-check of the line: the watch it waits
// with costs no Txn, and the hold's monitor of its own key none either.
// A watch that opens only after the holder's Unlock (a loaded machine)
// costs one more re-check, so a round may cost 3; rounds are tried until
// one shows the cost when nothing is late.
func TestContendedHandOffIsTwoTxns(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	wcli, c := testutil.CountedClient(t, srv)
	ws := testutil.Session(t, wcli, 10)
	round := func() int64 {
		require.NoError(t, holder.Lock(t.Context()))
		waiter := mutex.New(ws, pfx+"lock")
		c.Txns.Store(0)
		errc := make(chan error, 1)
		go func() { errc <- waiter.Lock(t.Context()) }()
		require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 2 }, 30*time.Second, 5*time.Millisecond)
		time.Sleep(100 * time.Millisecond) // most likely the waiter's watch is open by now
		require.NoError(t, holder.Unlock(t.Context()))
		select {
		case err := <-errc:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Lock() did not return after Unlock")
		}
		n := c.Txns.Load()
		require.NoError(t, waiter.Unlock(t.Context()))
		return n
	}
	var costs []int64
	for range 5 {
		n := round()
		costs = append(costs, n)
		require.LessOrEqual(t, n, int64(3), "Txns for a contended Lock, rounds so far %v", costs)
		if n == 2 {
			return
		}
	}
	t.Fatalf("no round of a contended Lock cost 2 Txns: %v", costs)
}
