package semaphore_test

import (
	"context"

	"github.com/coordkit/coordkit/semaphore"
)

// whole is a two-permit Semaphore taken both permits at once, as a
// testutil.Subject.
type whole struct{ *semaphore.Semaphore }

func (w whole) Acquire(ctx context.Context) error { return w.Semaphore.Acquire(ctx, 2) }
