package barrier_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestEnterRidesOutLostQuorum: etcd fails a write with "request timed out"
// while it has no quorum; Enter tries again instead of returning it.
func TestEnterRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Acquirer {
		b := barrier.NewDouble(s, name, 1)
		return testutil.Steps(b.Enter, b.Leave)
	})
}

// TestLeaveRidesOutLostQuorum: Leave's delete and reads fail with "request
// timed out" while etcd has no quorum; Leave sends them again (the delete
// is guarded, so a second one does nothing) instead of returning the error.
func TestLeaveRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Acquirer {
		b := barrier.NewDouble(s, name, 1)
		require.NoError(t, b.Enter(t.Context()))
		return testutil.Steps(b.Leave, func(context.Context) error { return nil })
	})
}
