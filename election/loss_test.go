package election_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// subject is an Election for the shared loss tests: Campaign and Resign.
type subject struct{ *election.Election }

func (e subject) Acquire(ctx context.Context) error { return e.Campaign(ctx, "v") }
func (e subject) Release(ctx context.Context) error { return e.Resign(ctx) }

var loss = testutil.LossCase{
	New:     func(s *concurrency.Session, name string) testutil.Subject { return subject{election.New(s, name)} },
	Lost:    election.ErrLost,
	Expired: election.ErrSessionExpired,
	NotHeld: election.ErrNotLeader,
}

// TestDoneWhenLost: Done closes and Err says why when the lease is
// revoked, when the key is deleted by hand, and when the client is cut off
// (before the server could expire the lease).
func TestDoneWhenLost(t *testing.T) {
	t.Parallel()
	testutil.RunLossTests(t, srv, loss)
}
