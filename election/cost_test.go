package election_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
)

// leader is an Election as a testutil.Locker: Campaign and Resign.
type leader struct{ *election.Election }

func (c leader) Lock(ctx context.Context) error   { return c.Campaign(ctx, "v") }
func (c leader) Unlock(ctx context.Context) error { return c.Resign(ctx) }

// TestHandoffsReuseWatches: two candidates leading in turns wait behind
// each other's key every time, and after the first waits reuse their
// watches rather than open one per Campaign.
func TestHandoffsReuseWatches(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	a := election.New(testutil.Session(t, cli, 10), pfx+"e")
	b := election.New(testutil.Session(t, cli, 10), pfx+"e")
	testutil.Handoffs(t, cli, pfx+"e/", 2, leader{a}, leader{b})
	before := c.WatchesUnder(pfx)
	testutil.Handoffs(t, cli, pfx+"e/", 6, leader{a}, leader{b})
	require.Equal(t, before, c.WatchesUnder(pfx), "watches opened for 6 more handoffs")
}
