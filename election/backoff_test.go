package election_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestWithBackoff: Run waits as WithBackoff says after work fails, not
// leading meanwhile: with an hour's backoff, work runs once, the election
// is left free, and cancelling ctx ends the wait.
func TestWithBackoff(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx, cancel := context.WithCancel(t.Context())
	var runs atomic.Int32
	failed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- election.Run(ctx, cli, pfx+"e", func(context.Context, *election.Election) error {
			if runs.Add(1) == 1 {
				defer close(failed)
			}
			return errors.New("work failed")
		}, election.WithRecampaign(), election.WithBackoff(time.Hour, time.Hour), election.WithTTL(5*time.Second))
	}()
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("work did not run")
	}
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 0 }, 10*time.Second, 5*time.Millisecond,
		"Run resigned before its pause")
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.Equal(t, int32(1), runs.Load(), "work runs again only after the backoff")
}

func TestWithBackoffPanics(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "election: WithBackoff(-1ns, 0s): need 0 <= initial <= max", func() { election.WithBackoff(-1, 0) })
	require.PanicsWithValue(t, "election: WithBackoff(2ns, 1ns): need 0 <= initial <= max", func() { election.WithBackoff(2, 1) })
	require.NotPanics(t, func() { election.WithBackoff(0, 0) })
}
