package promobs_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lock adapts a mutex to testutil.Acquirer.
type lock struct{ m *mutex.Mutex }

func (l lock) Acquire(ctx context.Context) error { return l.m.Lock(ctx) }
func (l lock) Release(ctx context.Context) error { return l.m.Unlock(ctx) }

// TestRetriesCounted: a Lock that rides out a lost quorum counts the
// requests it sent again, by reason.
func TestRetriesCounted(t *testing.T) {
	t.Parallel()
	reg, o := newObserver(t)
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) lock {
		return lock{mutex.New(s, name, mutex.WithObserver(o))}
	})
	n := 0.0
	for _, reason := range []string{"transient", "no_answer"} {
		if v := value(t, reg, "coordkit_retries_total", map[string]string{"kind": "mutex", "reason": reason}); v > 0 {
			n += v
		}
	}
	if n < 1 {
		t.Fatalf("coordkit_retries_total{kind=mutex} = %v, want at least 1", n)
	}
	if v := value(t, reg, "coordkit_acquisitions_total", map[string]string{"kind": "mutex", "result": "acquired"}); v != 1 {
		t.Fatalf("coordkit_acquisitions_total{kind=mutex,result=acquired} = %v, want 1", v)
	}
}
