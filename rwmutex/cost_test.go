package rwmutex_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/stretchr/testify/require"
)

// TestRLockWithoutWritersIsOneTxn: with no writer in line, a read lock is
// one Txn, even while other readers hold: readers are not in the line a
// reader's empty-line attempt looks at.
func TestRLockWithoutWritersIsOneTxn(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	other := rwmutex.New(s, pfx+"rw")
	m := rwmutex.New(s, pfx+"rw")
	require.NoError(t, other.RLock(t.Context())) // also waits for the lease's first confirmation
	defer other.RUnlock(context.Background())
	c.Txns.Store(0)
	for range 3 {
		require.NoError(t, m.RLock(t.Context()))
		require.NoError(t, m.RUnlock(t.Context()))
	}
	// RUnlock is guarded by the key's create revision: a Txn too.
	require.Equal(t, int64(6), c.Txns.Load(), "Txns for 3 RLock+RUnlock")
}
