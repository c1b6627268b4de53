package rwmutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
	"github.com/coordkit/coordkit/rwmutex"
)

// losses are an RWMutex's two modes, for the shared loss tests.
var losses = map[string]testutil.LossCase{
	"write": {New: holds.NewWriter, Lost: rwmutex.ErrLost, Expired: rwmutex.ErrSessionExpired, NotHeld: rwmutex.ErrNotLocked},
	"read":  {New: holds.NewReader, Lost: rwmutex.ErrLost, Expired: rwmutex.ErrSessionExpired, NotHeld: rwmutex.ErrNotLocked},
}

// TestDoneWhenLost: in either mode, Done closes and Err says why when the
// lease is revoked, when the key is deleted by hand, and when the client is
// cut off (before the server could expire the lease).
func TestDoneWhenLost(t *testing.T) {
	t.Parallel()
	for mode, c := range losses {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testutil.RunLossTests(t, srv, c)
		})
	}
}
