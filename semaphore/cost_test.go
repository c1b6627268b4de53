package semaphore_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// permit is a Semaphore taken one permit at a time, as a testutil.Locker.
type permit struct{ *semaphore.Semaphore }

func (p permit) Lock(ctx context.Context) error   { return p.Semaphore.Acquire(ctx, 1) }
func (p permit) Unlock(ctx context.Context) error { return p.Semaphore.Release(ctx) }

// whole is a two-permit Semaphore taken both permits at once, as a
// testutil.Subject.
type whole struct{ *semaphore.Semaphore }

func (w whole) Acquire(ctx context.Context) error { return w.Semaphore.Acquire(ctx, 2) }

// TestHandoffsReuseWatches: two holders of a one-permit semaphore taking it
// in turns reuse their watches of the line after the first waits, rather
// than open one per Acquire, and a kept watch's report of their own last
// release does not end their next wait.
func TestHandoffsReuseWatches(t *testing.T) {
	t.Parallel()
	testutil.RequireHandoffsReuseWatches(t, srv, func(s *concurrency.Session, name string) testutil.Locker { return permit{semaphore.New(s, name, 1)} })
}
