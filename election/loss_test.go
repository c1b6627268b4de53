package election_test

import (
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
)

var loss = testutil.LossCase{
	New:     holds.NewElection,
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
