package mutex_test

import (
	"testing"

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
