package etcdtest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestServerRoundTrip(t *testing.T) {
	srv := etcdtest.NewServer(t)
	require.Equal(t, 1, srv.Size())
	require.Len(t, srv.Endpoints(), 1)

	_, err := srv.Client().Put(t.Context(), "k", "v")
	require.NoError(t, err)

	// Through the proxy too: it is the same server.
	resp, err := srv.ProxyClient(t, 0).Get(t.Context(), "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "v", string(resp.Kvs[0].Value))
	require.Equal(t, 0, srv.Leader())
}

func TestParallelServersDoNotCollide(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := etcdtest.NewServer(t)
			cli := srv.Client()
			_, err := cli.Put(t.Context(), "who", name)
			require.NoError(t, err)
			resp, err := cli.Get(t.Context(), "who")
			require.NoError(t, err)
			// A shared server would show another subtest's value or revision.
			require.Equal(t, name, string(resp.Kvs[0].Value))
			require.Equal(t, int64(1), resp.Kvs[0].Version)
		})
	}
}

func TestBlackholeCutsOnlyTheProxiedClient(t *testing.T) {
	srv := etcdtest.NewServer(t)
	proxied := srv.ProxyClient(t, 0)
	_, err := proxied.Put(t.Context(), "k", "1")
	require.NoError(t, err)

	srv.Member(0).Blackhole()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	// A blackhole holds bytes rather than dropping them, so this request
	// may still land after Unblackhole: it writes a key of its own.
	_, err = proxied.Put(ctx, "held", "2")
	cancel()
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "DeadlineExceeded"),
		"Put through a blackholed proxy = %v, want a deadline error", err)

	_, err = srv.Client().Put(t.Context(), "k", "3")
	require.NoError(t, err, "direct client must not be affected")

	srv.Member(0).Unblackhole()
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := proxied.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "3", string(resp.Kvs[0].Value))
}

func TestCompact(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.Client()
	first, err := cli.Put(t.Context(), "k", "1")
	require.NoError(t, err)
	_, err = cli.Put(t.Context(), "k", "2")
	require.NoError(t, err)

	rev, err := srv.Compact(t.Context())
	require.NoError(t, err)
	require.Greater(t, rev, first.Header.Revision)

	_, err = cli.Get(t.Context(), "k", clientv3.WithRev(first.Header.Revision))
	require.ErrorIs(t, err, rpctypes.ErrCompacted)
}

func TestClusterSurvivesMemberLoss(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client()
	ctx := t.Context()
	lead, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	_, err = cli.Put(ctx, "before", "x")
	require.NoError(t, err)

	// A follower down: the other two keep a quorum.
	follower := (lead + 1) % 3
	c.Member(follower).Stop()
	require.False(t, c.Member(follower).Running())
	_, err = cli.Put(ctx, "no-follower", "x")
	require.NoError(t, err)
	require.NoError(t, c.Member(follower).Restart(ctx))

	// The leader down: a new one is elected and writes resume.
	lead, err = c.WaitLeader(ctx)
	require.NoError(t, err)
	stopped := time.Now()
	c.Member(lead).Stop()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = cli.Put(wctx, "no-leader", "x")
	require.NoError(t, err)
	t.Logf("writes resumed %v after the leader's Stop began (Stop itself waits for open streams)", time.Since(stopped))
	newLead, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NotEqual(t, lead, newLead)

	// Restarted with its data, the old leader catches up and serves all keys.
	require.NoError(t, c.Member(lead).Restart(ctx))
	direct, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Member(lead).Endpoint()}, DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer direct.Close()
	for _, k := range []string{"before", "no-follower", "no-leader"} {
		resp, err := direct.Get(wctx, k)
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, "key %q after restart", k)
	}
	require.Error(t, c.Member(lead).Restart(ctx), "restarting a running member must fail")
}

// fatalTB records a fatal failure instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = format
	runtime.Goexit()
}

func TestNewClusterRejectsBadSize(t *testing.T) {
	for _, n := range []int{0, -1} {
		tb := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			etcdtest.NewCluster(tb, n)
		}()
		<-done
		require.Contains(t, tb.msg, "at least one member", "NewCluster(%d)", n)
	}
}

func TestStartOutsideTests(t *testing.T) {
	c, err := etcdtest.Start(t.Context(), "")
	require.NoError(t, err)
	_, err = c.Client().Put(t.Context(), "k", "v")
	require.NoError(t, err)
	dir := c.Member(0).Dir()
	require.DirExists(t, dir)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "Start's temporary directory must be removed, stat = %v", err)

	_, err = etcdtest.Start(t.Context(), "", etcdtest.WithTiming(time.Second, time.Second))
	require.ErrorContains(t, err, "at least five heartbeats")
}

// TestStartOnTakenAddress fails with the listener's error instead of
// hanging when a fixed client address is taken.
func TestStartOnTakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, err = etcdtest.Start(t.Context(), "", etcdtest.WithClientAddr(l.Addr().String()))
	require.ErrorContains(t, err, "address already in use")
}
