package semaphore_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type permitHolder struct{ m *semaphore.Semaphore }

func (h permitHolder) Acquire(ctx context.Context) error { return h.m.Acquire(ctx, 1) }
func (h permitHolder) Release(ctx context.Context) error { return h.m.Release(ctx) }

// TestAcquireRidesOutLostQuorum: etcd fails a write with "request timed
// out" while it has no quorum; Acquire tries again instead of returning it.
func TestAcquireRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		return permitHolder{semaphore.New(s, name, 2)}
	})
}
