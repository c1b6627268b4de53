package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// RequireRidesOutLostQuorum starts a 3-member cluster, stops the two
// members its client does not talk to, and calls Acquire on the acquirer
// that newA makes (on a session with a 60 s TTL and a name under a
// prefix of the test's). Once etcd has failed a Txn (with the default
// timing, "request timed out" after 7 s), it restarts them. Acquire must
// then succeed, not return etcd's error: it asked to block until held. After
// Release, nothing may be left under the name, although a failed write may
// be applied late.
func RequireRidesOutLostQuorum[A Acquirer](t *testing.T, newA func(s *concurrency.Session, name string) A) {
	t.Helper()
	c := etcdtest.NewCluster(t, 3)
	lead, err := c.WaitLeader(t.Context())
	require.NoError(t, err)
	cli, counts := CountedClient(t, c, lead)
	pfx := Prefix(t, cli)
	h := newA(Session(t, cli, 60), pfx+"name")

	for i := range c.Size() {
		if i != lead {
			c.Member(i).Stop()
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.Acquire(ctx) }()
	require.Eventually(t, func() bool { return counts.TxnErrors.Load() > 0 }, 30*time.Second, 20*time.Millisecond,
		"etcd never failed a Txn while it had no quorum")
	for i := range c.Size() {
		if i != lead {
			require.NoError(t, c.Member(i).Restart(ctx))
		}
	}
	require.NoError(t, <-errc, "an acquisition must ride out a lost quorum while its context and lease last")
	require.NoError(t, h.Release(ctx))
	require.Eventually(t, func() bool {
		resp, err := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 0
	}, 10*time.Second, 20*time.Millisecond, "a retried write applied late stays in line")
}
