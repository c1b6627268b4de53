package mutex_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type lockHolder struct{ m *mutex.Mutex }

func (h lockHolder) Acquire(ctx context.Context) error { return h.m.Lock(ctx) }
func (h lockHolder) Release(ctx context.Context) error { return h.m.Unlock(ctx) }

// TestLockRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Lock tries again instead of returning that.
func TestLockRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		return lockHolder{mutex.New(s, name)}
	})
}
