//go:build chaos

package chaos_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
)

// waitBound bounds every wait in the tier-2 scenarios once what it waits
// for should have ended: generous, so that only a hang trips it, and far
// below go test's own timeout, so that a hang fails with a message naming
// the wait.
const waitBound = 2 * time.Minute

// afterRun is the bound for a wait on work that runs until ctx ends:
// ctx's deadline, plus waitBound.
func afterRun(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) + waitBound
	}
	return waitBound
}

// revision returns c's current revision, read within waitBound: where the
// history a scenario replays begins.
func revision(t *testing.T, c *chaos.ProcCluster) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	resp, err := c.Client().Get(ctx, "chaos-revision")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// settled waits, within waitBound, until c is healthy again after the
// faults, and returns its revision then (where the history to replay ends)
// and a context bounded by waitBound for the checks that follow.
func settled(t *testing.T, c *chaos.ProcCluster) (context.Context, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Client().Get(ctx, "chaos-revision")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, resp.Header.Revision
}

// stopHelpers ends the helper processes (SIGTERM, SIGKILL after 15 s),
// closes lines and waits, within waitBound, until the collector has read
// the rest and closed collected.
func stopHelpers(t *testing.T, procs []*chaos.Helper, lines chan chaos.Line, collected <-chan struct{}) {
	t.Helper()
	for _, p := range procs {
		p.Terminate(15 * time.Second)
	}
	close(lines)
	testutil.WaitClosed(t, collected, waitBound, "the helpers' lines")
}
