package election_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestInteropWithEtcdElection runs a coordkit candidate against an etcd
// concurrency.Election, which is also what "etcdctl elect NAME PROPOSAL"
// runs (etcdctl/ctlv3/command/elect_command.go: NewElection, Campaign; key
// NAME/<lease hex>). Both see one leader, whichever leads, both ways.
func TestInteropWithEtcdElection(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	ours := election.New(testutil.Session(t, cli, 10), pfx+"e")
	ts := testutil.Session(t, testutil.Client(t, srv), 10)
	theirs := concurrency.NewElection(ts, pfx+"e")

	// Theirs leads: ours waits, and reports theirs as the leader.
	require.NoError(t, theirs.Campaign(ctx, "theirs"))
	require.Equal(t, fmt.Sprintf("%se/%x", pfx, int64(ts.Lease())), theirs.Key(), "etcdctl elect's key layout")
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return ours.Campaign(ctx, "ours") })
	select {
	case err := <-got:
		t.Fatalf("our Campaign returned %v while etcd's leads", err)
	case <-time.After(200 * time.Millisecond):
	}
	li, err := ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, election.LeaderInfo{Key: theirs.Key(), Value: "theirs", Rev: theirs.Rev(), ModRev: theirs.Rev(), Lease: ts.Lease(), AsOf: li.AsOf}, li)
	require.NoError(t, theirs.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))

	// Ours leads: etcd's Leader and Observe report it, and etcd's Campaign
	// waits until ours resigns.
	resp, err := theirs.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, ours.Key(), string(resp.Kvs[0].Key))
	require.Equal(t, "ours", string(resp.Kvs[0].Value))
	octx, cancel := context.WithCancel(ctx)
	obs := theirs.Observe(octx)
	select {
	case resp := <-obs:
		require.Equal(t, ours.Key(), string(resp.Kvs[0].Key), "etcd's Observe")
	case <-time.After(10 * time.Second):
		t.Fatal("etcd's Observe delivered nothing")
	}
	cancel()
	for range obs {
	}
	got = campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return theirs.Campaign(ctx, "theirs") })
	select {
	case err := <-got:
		t.Fatalf("etcd's Campaign returned %v while ours leads", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, ours.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	li, err = ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, theirs.Key(), li.Key)
	require.NoError(t, theirs.Resign(ctx))
}

// TestFailoverWhenLeaderLeaseRevoked is a crash of the leader's process as
// the server sees it: its lease goes away, the next candidate leads, and
// the old leader learns it lost and can no longer write.
func TestFailoverWhenLeaderLeaseRevoked(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })
	as := testutil.Session(t, testutil.Client(t, srv), 10)
	a := election.New(as, pfx+"e")
	b := election.New(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"e")
	require.NoError(t, a.Campaign(t.Context(), "a"))
	adone := a.Done()
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })

	_, err := cli.Revoke(t.Context(), as.Lease())
	require.NoError(t, err)
	require.NoError(t, result(t, got, 10*time.Second))
	require.Greater(t, b.Token(), a.Token())
	waitClosed(t, adone, 10*time.Second, "old leader's Done")
	require.True(t, errors.Is(a.Err(), election.ErrSessionExpired) || errors.Is(a.Err(), election.ErrLost), "Err = %v", a.Err())
	resp, err := a.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "stale")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "the old leader's guarded write must not commit")
	resp, err = b.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "new")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.NoError(t, b.Resign(t.Context()))
}

// TestFailoverWhenLeaderCutOff cuts the leader's client off from etcd. The
// leader must give up on its own clock before the next candidate leads,
// and the next candidate must lead once the lease expires.
func TestFailoverWhenLeaderCutOff(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := testutil.Client(t, es)
	a := election.New(testutil.Session(t, es.ProxyClient(t, 0), 2), "/cut/e")
	b := election.New(testutil.Session(t, direct, 2), "/cut/e")
	require.NoError(t, a.Campaign(t.Context(), "a"))
	adone := a.Done()
	got := campaignAsync(t, direct, "/cut/", 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })

	es.Member(0).Blackhole()
	defer es.Member(0).Unblackhole()
	require.NoError(t, result(t, got, 20*time.Second))
	select {
	case <-adone:
	default:
		t.Fatal("the new leader leads while the old one, cut off, still believes it leads")
	}
	require.ErrorIs(t, a.Err(), election.ErrLost)
	require.Greater(t, b.Token(), a.Token())
	require.NoError(t, b.Resign(t.Context()))
}
