package queue_test

import (
	"context"
	"fmt"

	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/queue"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// quorumTake enqueues one item under name and returns an acquirer whose
// Acquire takes it with take and checks it, and whose Release ends the
// take with done (if any) and deletes the queue's counter.
func quorumTake(t *testing.T, s *concurrency.Session, name string, take func(*queue.Queue, context.Context) (queue.Item, func(context.Context) error, error)) testutil.Acquirer {
	t.Helper()
	q := queue.New(s.Client(), name, queue.WithSession(s))
	if err := q.Enqueue(t.Context(), []byte("item")); err != nil {
		t.Fatalf("Enqueue() = %v", err)
	}
	var done func(context.Context) error
	return testutil.Steps(
		func(ctx context.Context) error {
			it, d, err := take(q, ctx)
			if err != nil {
				return err
			}
			done = d
			if string(it.Value) != "item" {
				return fmt.Errorf("took %q, want %q", it.Value, "item")
			}
			return nil
		},
		func(ctx context.Context) error {
			if done != nil {
				if err := done(ctx); err != nil {
					return err
				}
			}
			_, err := s.Client().Delete(ctx, name+"/seq")
			return err
		},
	)
}

// TestDequeueRidesOutLostQuorum: etcd fails the reads of a Dequeue with
// "request timed out" while it has no quorum; Dequeue reads again instead
// of returning it, and takes the item once etcd is back.
func TestDequeueRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Acquirer {
		return quorumTake(t, s, name, func(q *queue.Queue, ctx context.Context) (queue.Item, func(context.Context) error, error) {
			it, err := q.Dequeue(ctx)
			return it, nil, err
		})
	})
}

// TestClaimRidesOutLostQuorum is TestDequeueRidesOutLostQuorum for Claim.
func TestClaimRidesOutLostQuorum(t *testing.T) {
	t.Parallel()
	testutil.RequireRidesOutLostQuorum(t, func(s *concurrency.Session, name string) testutil.Acquirer {
		return quorumTake(t, s, name, func(q *queue.Queue, ctx context.Context) (queue.Item, func(context.Context) error, error) {
			c, err := q.Claim(ctx)
			if err != nil {
				return queue.Item{}, nil, err
			}
			return c.Item(), c.Ack, nil
		})
	})
}
