package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	testutil.WaitClosed(t, adone, 10*time.Second, "old leader's Done")
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

// TestCampaignCutOffReturnsError cuts a waiting candidate off from etcd
// while the leader carries on: its Campaign must fail on its own clock
// (its lease may expire meanwhile), not wait for the leader, and never
// report leadership.
func TestCampaignCutOffReturnsError(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := testutil.Client(t, es)
	leader := election.New(testutil.Session(t, direct, 10), "/cutc/e")
	cand := election.New(testutil.Session(t, es.ProxyClient(t, 0), 2), "/cutc/e")
	require.NoError(t, leader.Campaign(t.Context(), "l"))
	got := campaignAsync(t, direct, "/cutc/", 2, func(ctx context.Context) error { return cand.Campaign(ctx, "c") })

	es.Member(0).Blackhole()
	defer es.Member(0).Unblackhole()
	err := result(t, got, 20*time.Second)
	require.True(t, errors.Is(err, election.ErrLost) || errors.Is(err, election.ErrSessionExpired), "Campaign cut off = %v", err)
	require.False(t, cand.IsLeader())
	require.NoError(t, leader.Err(), "the leader still leads")
	es.Member(0).Unblackhole()
	// The candidate's key goes, with its cleanup or its lease.
	require.Eventually(t, func() bool { return len(testutil.Keys(t, direct, "/cutc/")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, leader.Resign(t.Context()))
}
