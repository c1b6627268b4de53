package semaphore_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// permit is a one-permit Semaphore as a testutil.Locker.
type permit struct{ *semaphore.Semaphore }

func (p permit) Lock(ctx context.Context) error   { return p.Acquire(ctx, 1) }
func (p permit) Unlock(ctx context.Context) error { return p.Release(ctx) }

// TestHandoffsReuseWatches: two holders of a one-permit semaphore taking it
// in turns reuse their watches of the line after the first waits, rather
// than open one per Acquire, and a kept watch's report of their own last
// release does not end their next wait.
func TestHandoffsReuseWatches(t *testing.T) {
	t.Parallel()
	testutil.RequireHandoffsReuseWatches(t, srv, func(s *concurrency.Session, name string) testutil.Locker { return permit{semaphore.New(s, name, 1)} })
}
