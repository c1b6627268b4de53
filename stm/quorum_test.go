package stm_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestRunRidesOutLostQuorum: etcd fails Run's reads (Txns) with "request
// timed out" while it has no quorum; Run tries again instead of returning
// the error, and commits once etcd is back.
func TestRunRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Acquirer {
		cli := s.Client()
		return testutil.Steps(
			func(ctx context.Context) error {
				_, err := stm.Run(ctx, cli, incr(name))
				return err
			},
			func(ctx context.Context) error {
				_, err := cli.Delete(ctx, name)
				return err
			},
		)
	})
}
