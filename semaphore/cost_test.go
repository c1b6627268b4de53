package semaphore_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/stretchr/testify/require"
)

// permit is a one-permit Semaphore as a testutil.Locker.
type permit struct{ *semaphore.Semaphore }

func (p permit) Lock(ctx context.Context) error   { return p.Acquire(ctx, 1) }
func (p permit) Unlock(ctx context.Context) error { return p.Release(ctx) }

// TestHandoffsReuseWatches: two holders of a one-permit semaphore taking it
// in turns reuse their watches of the line after the first waits, rather
// than open one per Acquire, and a kept watch's report of their own last
// release does not end their next wait.
func TestHandoffsReuseWatches(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	a := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 1)
	b := semaphore.New(testutil.Session(t, cli, 10), pfx+"sem", 1)
	testutil.Handoffs(t, cli, pfx+"sem/", 2, permit{a}, permit{b})
	before := c.WatchesUnder(pfx)
	testutil.Handoffs(t, cli, pfx+"sem/", 6, permit{a}, permit{b})
	require.Equal(t, before, c.WatchesUnder(pfx), "watches opened for 6 more handoffs")
}
