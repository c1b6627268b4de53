package mutex_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// subject is a Mutex for the shared loss tests.
type subject struct{ *mutex.Mutex }

func (m subject) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m subject) Release(ctx context.Context) error { return m.Unlock(ctx) }

var loss = testutil.LossCase{
	New:     func(s *concurrency.Session, name string) testutil.Subject { return subject{mutex.New(s, name)} },
	Lost:    mutex.ErrLost,
	Expired: mutex.ErrSessionExpired,
	NotHeld: mutex.ErrNotLocked,
}

// TestDoneWhenLost: Done closes and Err says why when the lease is
// revoked, when the key is deleted by hand, and when the client is cut off
// (before the server could expire the lease).
func TestDoneWhenLost(t *testing.T) {
	t.Parallel()
	testutil.RunLossTests(t, srv, loss)
}
