package rwmutex_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/rwmutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// writer and reader are an RWMutex's two modes, for the shared loss tests.
type (
	writer struct{ *rwmutex.RWMutex }
	reader struct{ *rwmutex.RWMutex }
)

func (m writer) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m writer) Release(ctx context.Context) error { return m.Unlock(ctx) }
func (m reader) Acquire(ctx context.Context) error { return m.RLock(ctx) }
func (m reader) Release(ctx context.Context) error { return m.RUnlock(ctx) }

var losses = map[string]testutil.LossCase{
	"write": {
		New:  func(s *concurrency.Session, name string) testutil.Subject { return writer{rwmutex.New(s, name)} },
		Lost: rwmutex.ErrLost, Expired: rwmutex.ErrSessionExpired, NotHeld: rwmutex.ErrNotLocked,
	},
	"read": {
		New:  func(s *concurrency.Session, name string) testutil.Subject { return reader{rwmutex.New(s, name)} },
		Lost: rwmutex.ErrLost, Expired: rwmutex.ErrSessionExpired, NotHeld: rwmutex.ErrNotLocked,
	},
}

// TestDoneWhenLost: in either mode, Done closes and Err says why when the
// lease is revoked, when the key is deleted by hand, and when the client is
// cut off (before the server could expire the lease).
func TestDoneWhenLost(t *testing.T) {
	t.Parallel()
	for mode, c := range losses {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testutil.RunLossTests(t, srv, c)
		})
	}
}
