package election_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestCampaignRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Campaign tries again instead of returning it.
func TestCampaignRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		e := election.New(s, name)
		return testutil.Holder{Acquire: func(ctx context.Context) error { return e.Campaign(ctx, "me") }, Release: e.Resign}
	})
}
