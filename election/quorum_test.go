package election_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
)

// TestCampaignRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Campaign tries again instead of returning it.
func TestCampaignRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, holds.NewElection)
}
