package semaphore_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
)

// TestAcquireRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Acquire tries again instead of returning it.
func TestAcquireRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, holds.NewSemaphore(2, 1))
}
