package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestTryCampaign: TryCampaign never waits and leaves no key behind when
// another candidate leads, and leads when the election is free.
func TestTryCampaign(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	a := election.New(testutil.Session(t, cli, 10), pfx+"e")
	b := election.New(testutil.Session(t, cli, 10), pfx+"e")

	require.NoError(t, a.TryCampaign(ctx, "a"), "TryCampaign on a free election")
	require.True(t, a.IsLeader())
	require.NoError(t, a.TryCampaign(ctx, "a2"), "TryCampaign by the leader proclaims")
	li, err := a.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "a2", li.Value)

	// Twice: the second try joins with a new key behind the first's.
	for range 2 {
		err = b.TryCampaign(ctx, "b")
		require.ErrorIs(t, err, election.ErrLeaderExists)
		require.False(t, b.IsLeader())
		require.Equal(t, []string{a.Key()}, testutil.Keys(t, cli, pfx), "only the leader's key is left")
	}

	require.NoError(t, a.Resign(ctx))
	require.NoError(t, b.TryCampaign(ctx, "b"), "TryCampaign after the leader resigned")
	require.True(t, b.IsLeader())
	li, err = b.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "b", li.Value)
	require.NoError(t, b.Resign(ctx))
	require.Empty(t, testutil.Keys(t, cli, pfx))
}

// TestTryCampaignWhileCampaigning: a TryCampaign through a handle on which
// another goroutine waits in Campaign returns at once.
func TestTryCampaignWhileCampaigning(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	a := election.New(testutil.Session(t, cli, 10), pfx+"e")
	b := election.New(testutil.Session(t, cli, 10), pfx+"e")
	require.NoError(t, a.Campaign(ctx, "a"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })

	require.ErrorIs(t, b.TryCampaign(ctx, "b"), election.ErrLeaderExists)
	require.Len(t, testutil.Keys(t, cli, pfx), 2, "the waiting Campaign's key stays")

	require.NoError(t, a.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	require.NoError(t, b.Resign(ctx))
}
