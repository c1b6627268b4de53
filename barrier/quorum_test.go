package barrier_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type enterHolder struct{ b *barrier.DoubleBarrier }

func (h enterHolder) Acquire(ctx context.Context) error { return h.b.Enter(ctx) }
func (h enterHolder) Release(ctx context.Context) error { return h.b.Leave(ctx) }

// TestEnterRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Enter tries again instead of returning it.
func TestEnterRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		return enterHolder{barrier.NewDouble(s, name, 1)}
	})
}
