package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/queue"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestClaimAckNack(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	q := newQueue(t, cli, pfx, queue.WithSession(s), queue.WithValue("worker-1"))
	plain := newQueue(t, testutil.Client(t, srv), pfx)
	ctx := t.Context()
	enqueue(t, q, "a", "b")

	c, err := q.Claim(ctx)
	require.NoError(t, err)
	require.Equal(t, "a", string(c.Item().Value))
	require.NoError(t, c.Err())
	marker, err := cli.Get(ctx, c.Marker())
	require.NoError(t, err)
	require.Len(t, marker.Kvs, 1)
	require.Equal(t, "worker-1", string(marker.Kvs[0].Value))
	require.Equal(t, int64(s.Lease()), marker.Kvs[0].Lease, "the marker is on the session's lease")

	// A claimed item is invisible to Dequeue, but counted.
	n, err := q.Len(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	it, err := plain.TryDequeue(ctx)
	require.NoError(t, err)
	require.Equal(t, "b", string(it.Value))
	_, err = plain.TryDequeue(ctx)
	require.ErrorIs(t, err, queue.ErrEmpty, "the claimed item must not be handed out")

	// Nack: visible again, in its place.
	done, cctx := c.Done(), c.Context(ctx)
	require.NoError(t, cctx.Err(), "Context while claimed")
	require.NoError(t, c.Nack(ctx))
	testutil.WaitClosed(t, done, 5*time.Second, "Done after Nack")
	testutil.WaitClosed(t, cctx.Done(), 5*time.Second, "Context after Nack")
	require.ErrorIs(t, context.Cause(cctx), queue.ErrNotClaimed)
	require.ErrorIs(t, c.Err(), queue.ErrNotClaimed)
	require.ErrorIs(t, c.Nack(ctx), queue.ErrNotClaimed)
	require.ErrorIs(t, c.Ack(ctx), queue.ErrNotClaimed)

	c, err = q.TryClaim(ctx)
	require.NoError(t, err)
	require.Equal(t, "a", string(c.Item().Value))
	_, err = q.TryClaim(ctx)
	require.ErrorIs(t, err, queue.ErrEmpty)
	require.NoError(t, c.Ack(ctx))
	require.ErrorIs(t, c.Ack(ctx), queue.ErrNotClaimed)
	n, err = q.Len(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestClaimRedeliveredAfterRevoke is the reliable mode's reason to be: a
// consumer whose session is revoked mid-work loses its claim, learns so,
// cannot acknowledge, and the item goes to another consumer that was
// waiting.
func TestClaimRedeliveredAfterRevoke(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s1 := testutil.Session(t, testutil.Client(t, srv), 10)
	s2 := testutil.Session(t, testutil.Client(t, srv), 10)
	c1q := newQueue(t, s1.Client(), pfx, queue.WithSession(s1))
	c2q := newQueue(t, s2.Client(), pfx, queue.WithSession(s2))
	enqueue(t, newQueue(t, cli, pfx), "job")

	c1, err := c1q.Claim(t.Context())
	require.NoError(t, err)
	require.Equal(t, "job", string(c1.Item().Value))

	// The second consumer waits: nothing is visible.
	got := make(chan *queue.Claim, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := c2q.Claim(t.Context())
		if err != nil {
			errc <- err
			return
		}
		got <- c
	}()
	select {
	case c := <-got:
		t.Fatalf("second consumer got %q while it was claimed", c.Item().Value)
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(300 * time.Millisecond):
	}

	// The first consumer "crashes": its lease is revoked mid-work.
	_, err = cli.Revoke(t.Context(), s1.Lease())
	require.NoError(t, err)
	testutil.WaitClosed(t, c1.Done(), 10*time.Second, "Done after revoke")
	// Lost (the marker's delete was seen first) or expired (the lease's).
	require.True(t, errors.Is(c1.Err(), queue.ErrSessionExpired) || errors.Is(c1.Err(), queue.ErrLost), "Err = %v", c1.Err())

	var c2 *queue.Claim
	select {
	case c2 = <-got:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the item was not redelivered")
	}
	require.Equal(t, "job", string(c2.Item().Value))
	require.Equal(t, c1.Item().Key, c2.Item().Key)

	// The crashed consumer's late Ack must not remove the redelivered item.
	err = c1.Ack(t.Context())
	require.True(t, errors.Is(err, queue.ErrSessionExpired) || errors.Is(err, queue.ErrLost), "late Ack = %v", err)
	require.NoError(t, c2.Err())
	require.NoError(t, c2.Ack(t.Context()))
}

// TestClaimMarkerDeleted: a claim whose marker is deleted by someone else
// is lost, and its Ack reports so.
func TestClaimMarkerDeleted(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx, queue.WithSession(testutil.Session(t, cli, 10)))
	enqueue(t, q, "x")
	c, err := q.Claim(t.Context())
	require.NoError(t, err)
	// Context alone starts watching the marker.
	cctx := c.Context(t.Context())
	_, err = cli.Delete(t.Context(), c.Marker())
	require.NoError(t, err)
	testutil.WaitClosed(t, cctx.Done(), 10*time.Second, "Context after the marker was deleted")
	require.ErrorIs(t, context.Cause(cctx), queue.ErrLost)
	testutil.WaitClosed(t, c.Done(), time.Second, "Done after the marker was deleted")
	require.ErrorIs(t, c.Err(), queue.ErrLost)
	require.ErrorIs(t, c.Ack(t.Context()), queue.ErrLost)
	require.Equal(t, []string{"x"}, drain(t, q), "the item is visible again")
}

// TestClaimWithResultIsExactlyOnce stores a result and acknowledges the
// item in one transaction guarded by the claim.
func TestClaimWithResultIsExactlyOnce(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"result") })
	q := newQueue(t, cli, pfx, queue.WithSession(testutil.Session(t, cli, 10)))
	enqueue(t, q, "7")
	c, err := q.Claim(t.Context())
	require.NoError(t, err)
	resp, err := cli.Txn(t.Context()).If(c.IsOwner()).Then(
		clientv3.OpPut(pfx+"result", "49"),
		clientv3.OpDelete(c.Item().Key),
		clientv3.OpDelete(c.Marker()),
	).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	resp, err = cli.Txn(t.Context()).If(c.IsOwner()).Then(clientv3.OpPut(pfx+"result", "again")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "a second guarded write must not commit")
}

// TestReliableWorkersWithCrashes runs reliable consumers over 60 items,
// revoking one consumer's session while it works on an item. Every item is
// acknowledged exactly once, and the crashed consumer's item is among them.
func TestReliableWorkersWithCrashes(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const items = 60
	producer := newQueue(t, cli, pfx)
	for i := range items {
		require.NoError(t, producer.Enqueue(t.Context(), []byte(fmt.Sprint(i))))
	}
	var (
		mu      sync.Mutex
		acked   = map[string]int{}
		crashed string
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Workers block in Claim until every item is acknowledged: the crashed
	// worker's item only becomes visible again once its lease is gone.
	all, allDone := context.WithCancel(ctx)
	defer allDone()
	for w := range 3 {
		s := testutil.Session(t, testutil.Client(t, srv), 10)
		q := newQueue(t, s.Client(), pfx, queue.WithSession(s))
		wg.Go(func() {
			for {
				c, err := q.Claim(all)
				if all.Err() != nil {
					if err == nil {
						t.Errorf("claimed %q after every item was acknowledged", c.Item().Value)
					}
					return
				}
				if err != nil {
					if w == 0 && errors.Is(err, queue.ErrSessionExpired) {
						return
					}
					t.Error(err)
					return
				}
				if w == 0 {
					// This worker crashes on its first item.
					mu.Lock()
					crashed = string(c.Item().Value)
					mu.Unlock()
					if _, err := cli.Revoke(ctx, s.Lease()); err != nil {
						t.Error(err)
					}
					<-c.Done()
					return
				}
				if err := c.Ack(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[string(c.Item().Value)]++
				if len(acked) == items {
					allDone()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NotEmpty(t, crashed)
	require.Len(t, acked, items, "every item acknowledged, the crashed one included")
	for v, n := range acked {
		require.Equal(t, 1, n, "item %s acknowledged %d times", v, n)
	}
}

// TestReleasedItemNotPassedOver: an item released (Nack) after a consumer
// last looked is still served before later items: the consumer's cached
// view must not hide it.
func TestReleasedItemNotPassedOver(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	r := newQueue(t, cli, pfx, queue.WithSession(testutil.Session(t, cli, 10)))
	p := newQueue(t, testutil.Client(t, srv), pfx)
	enqueue(t, p, "a", "b", "c")
	c, err := r.Claim(t.Context())
	require.NoError(t, err)
	require.Equal(t, "a", string(c.Item().Value))
	require.Equal(t, "b", string(dequeueWithin(t, p, 10*time.Second).Value))
	require.NoError(t, c.Nack(t.Context()))
	require.Equal(t, []string{"a", "c"}, drain(t, p))
}

// TestManyClaimedAhead: with more items claimed at the head than a batch
// holds, consumers page past them to the first visible item.
func TestManyClaimedAhead(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	r := newQueue(t, cli, pfx, queue.WithSession(testutil.Session(t, cli, 10)), queue.WithBatch(2))
	var claims []*queue.Claim
	for i := range 12 {
		enqueue(t, r, fmt.Sprint(i))
	}
	for range 9 {
		c, err := r.TryClaim(t.Context())
		require.NoError(t, err)
		claims = append(claims, c)
	}
	// A fresh handle with a small batch knows nothing of the claims.
	p := newQueue(t, testutil.Client(t, srv), pfx, queue.WithBatch(2))
	require.Equal(t, "9", string(dequeueWithin(t, p, 10*time.Second).Value))
	c, err := r.TryClaim(t.Context())
	require.NoError(t, err)
	require.Equal(t, "10", string(c.Item().Value))
	claims = append(claims, c)
	for _, c := range claims[:5] {
		require.NoError(t, c.Nack(t.Context()))
	}
	for _, c := range claims[5:] {
		require.NoError(t, c.Ack(t.Context()))
	}
	require.Equal(t, []string{"0", "1", "2", "3", "4", "11"}, drain(t, p))
}
