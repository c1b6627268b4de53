//go:build chaos

package chaos_test

import (
	"context"
	"time"
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
