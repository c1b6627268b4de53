package mutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestLockRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Lock tries again instead of returning that.
func TestLockRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		m := mutex.New(s, name)
		return testutil.Holder{Acquire: m.Lock, Release: m.Unlock}
	})
}
