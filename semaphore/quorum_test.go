package semaphore_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestAcquireRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Acquire tries again instead of returning it.
func TestAcquireRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		m := semaphore.New(s, name, 2)
		return testutil.Holder{Acquire: func(ctx context.Context) error { return m.Acquire(ctx, 1) }, Release: m.Release}
	})
}
