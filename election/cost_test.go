package election_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
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
	testutil.RequireHandoffsReuseWatches(t, srv, func(s *concurrency.Session, name string) testutil.Locker { return leader{election.New(s, name)} })
}
