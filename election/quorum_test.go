package election_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type leaderHolder struct{ e *election.Election }

func (h leaderHolder) Acquire(ctx context.Context) error { return h.e.Campaign(ctx, "me") }
func (h leaderHolder) Release(ctx context.Context) error { return h.e.Resign(ctx) }

// TestCampaignRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Campaign tries again instead of returning it.
func TestCampaignRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		return leaderHolder{election.New(s, name)}
	})
}
