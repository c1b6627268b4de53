package barrier_test

import (
	"testing"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestEnterRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Enter tries again instead of returning it.
func TestEnterRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Holder {
		b := barrier.NewDouble(s, name, 1)
		return testutil.Holder{Acquire: b.Enter, Release: b.Leave}
	})
}
