package mutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
)

// TestLockRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Lock tries again instead of returning that.
func TestLockRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, holds.NewMutex)
}
