package mutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
	"github.com/coordkit/coordkit/mutex"
)

var loss = testutil.LossCase{
	New:     holds.NewMutex,
	Lost:    mutex.ErrLost,
	Expired: mutex.ErrSessionExpired,
	NotHeld: mutex.ErrNotLocked,
}

// TestDoneWhenLost: Done closes and Err says why when the lease is
// revoked, when the key is deleted by hand, and when the client is cut off
// (before the server could expire the lease).
func TestDoneWhenLost(t *testing.T) {
	t.Parallel()
	testutil.RunLossTests(t, srv, loss)
}
