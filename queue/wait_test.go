package queue_test

import (
	"context"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/queue"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// dequeue waits for an item of the empty queue on name.
func dequeue(ctx context.Context, cli *clientv3.Client, name string) error {
	_, err := queue.New(cli, name).Dequeue(ctx)
	return err
}

// claim waits to claim an item of the empty queue on name.
func claim(ctx context.Context, cli *clientv3.Client, name string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = queue.New(cli, name, queue.WithSession(s)).Claim(ctx)
	return err
}

// TestWaitEndsWhenClientCloses: Dequeue and Claim on a context that never
// ends return an error once their client is closed.
func TestWaitEndsWhenClientCloses(t *testing.T) {
	t.Parallel()
	t.Run("dequeue", func(t *testing.T) { testutil.RequireEndsOnClose(t, srv, dequeue) })
	t.Run("claim", func(t *testing.T) { testutil.RequireEndsOnClose(t, srv, claim) })
}

// TestWaitEndsWhenRefused: Dequeue and Claim return etcd's refusal when
// their watch cannot be opened again, instead of trying for as long as ctx
// lasts.
func TestWaitEndsWhenRefused(t *testing.T) {
	t.Parallel()
	t.Run("dequeue", func(t *testing.T) { testutil.RequireEndsWhenRefused(t, dequeue) })
	t.Run("claim", func(t *testing.T) { testutil.RequireEndsWhenRefused(t, claim) })
}
