package mutex_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLockRidesOutLostQuorum: while a cluster has no quorum, etcd fails a
// write after its request timeout ("etcdserver: request timed out"). Lock
// must try again, within its context and while the lease lasts, instead of
// returning that error; and since the failed Join may still be applied
// late, nothing may be left in line after Unlock.
func TestLockRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewCluster(t, 3)
	lead, err := c.WaitLeader(t.Context())
	require.NoError(t, err)
	cli, counts := testutil.CountedClient(t, c, lead)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 60)
	m := mutex.New(s, pfx+"lock")

	for i := range c.Size() {
		if i != lead {
			c.Member(i).Stop()
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- m.Lock(ctx) }()
	// Keep the quorum away until etcd has failed the Join at least once: with
	// the default timing, after its request timeout of 7 s.
	require.Eventually(t, func() bool { return counts.TxnErrors.Load() > 0 }, 30*time.Second, 20*time.Millisecond,
		"etcd never failed a Txn while it had no quorum")
	for i := range c.Size() {
		if i != lead {
			require.NoError(t, c.Member(i).Restart(ctx))
		}
	}
	require.NoError(t, <-errc, "Lock must ride out a lost quorum while its context and lease last")
	require.Positive(t, m.Token())
	require.NoError(t, m.Unlock(ctx))
	require.Eventually(t, func() bool {
		resp, err := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 0
	}, 10*time.Second, 20*time.Millisecond, "a retried Join applied late stays in line")
}
