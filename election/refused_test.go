package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestRunReturnsWhenRefused: a user whose etcd role does not cover the
// election's name can never campaign, so Run returns etcd's refusal instead
// of campaigning again for as long as its context lasts.
func TestRunReturnsWhenRefused(t *testing.T) {
	_, cli := testutil.AuthServer(t)

	// Long enough for many campaigns at the default backoff; a Run that
	// retries the refusal ends with the deadline instead.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := election.Run(ctx, cli, "workers/scheduler", func(context.Context, *election.Election) error {
		t.Error("work ran for a user who may not campaign")
		return nil
	}, election.WithRecampaign())
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("Run() = %v, want an error wrapping %v", err, rpctypes.ErrPermissionDenied)
	}

	// Inside its role, the same user leads.
	ran := false
	err = election.Run(t.Context(), cli, "app/scheduler", func(context.Context, *election.Election) error {
		ran = true
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("Run() inside the role = %v (work ran: %v), want nil after work ran", err, ran)
	}
}
