package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/queue"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newQueue returns a queue on pfx+"q" and removes its sequence key when
// the test ends, so the prefix can be checked empty (items must have been
// consumed by then).
func newQueue(t *testing.T, cli *clientv3.Client, pfx string, opts ...queue.Option) *queue.Queue {
	t.Helper()
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"q/seq") })
	return queue.New(cli, pfx+"q", opts...)
}

func enqueue(t *testing.T, q *queue.Queue, vals ...string) {
	t.Helper()
	for _, v := range vals {
		require.NoError(t, q.Enqueue(t.Context(), []byte(v)))
	}
}

// drain dequeues with TryDequeue until the queue is empty.
func drain(t *testing.T, q *queue.Queue) []string {
	t.Helper()
	var out []string
	for {
		it, err := q.TryDequeue(t.Context())
		if err != nil {
			require.ErrorIs(t, err, queue.ErrEmpty)
			return out
		}
		out = append(out, string(it.Value))
	}
}

// dequeueWithin fails the test if Dequeue does not return within d.
func dequeueWithin(t *testing.T, q *queue.Queue, d time.Duration) queue.Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	it, err := q.Dequeue(ctx)
	require.NoError(t, err)
	return it
}

func TestFIFO(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx)
	ctx := t.Context()

	_, err := q.TryDequeue(ctx)
	require.ErrorIs(t, err, queue.ErrEmpty)
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprint(i))
	}
	enqueue(t, q, want...)
	n, err := q.Len(ctx)
	require.NoError(t, err)
	require.Equal(t, 20, n)

	// Another handle, another client: the order is the queue's, not the
	// handle's.
	other := newQueue(t, testutil.Client(t, srv), pfx)
	it, err := other.Dequeue(ctx)
	require.NoError(t, err)
	require.Equal(t, "0", string(it.Value))
	require.Equal(t, 0, it.Priority)
	require.Contains(t, it.Key, pfx+"q/ready/")
	require.Equal(t, want[1:], drain(t, q))
	n, err = q.Len(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx)
	ctx := t.Context()
	items := []struct {
		v string
		p int
	}{{"a", 0}, {"b", 5}, {"c", -3}, {"d", 0}, {"e", queue.MinPriority}, {"f", 5}, {"g", queue.MaxPriority}, {"h", -3}}
	for _, it := range items {
		require.NoError(t, q.Enqueue(ctx, []byte(it.v), queue.WithPriority(it.p)))
	}
	require.Equal(t, []string{"e", "c", "h", "a", "d", "b", "f", "g"}, drain(t, q))

	// A higher-priority item enqueued after a consumer last looked is still
	// served first: the handle's cached view must not hide it.
	enqueue(t, q, "low1", "low2")
	it := dequeueWithin(t, q, 10*time.Second)
	require.Equal(t, "low1", string(it.Value))
	other := newQueue(t, cli, pfx)
	require.NoError(t, other.Enqueue(ctx, []byte("urgent"), queue.WithPriority(-1)))
	it = dequeueWithin(t, q, 10*time.Second)
	require.Equal(t, "urgent", string(it.Value))
	require.Equal(t, -1, it.Priority)
	require.Equal(t, []string{"low2"}, drain(t, q))
}

func TestDelayOrder(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx)
	ctx := t.Context()

	due := time.Now().Add(time.Second)
	require.NoError(t, q.Enqueue(ctx, []byte("late"), queue.WithNotBefore(due)))
	enqueue(t, q, "b", "c")
	n, err := q.Len(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n, "Len counts delayed items")
	require.Equal(t, []string{"b", "c"}, drain(t, q), "a delayed item is skipped until due")

	// Blocking: the delayed item comes when due, not before.
	it := dequeueWithin(t, q, 15*time.Second)
	require.Equal(t, "late", string(it.Value))
	require.False(t, time.Now().Before(due), "handed out before its time")

	// Once due, a delayed item takes its place by enqueue order: ahead of
	// items enqueued after it.
	require.NoError(t, q.Enqueue(ctx, []byte("d1"), queue.WithDelay(300*time.Millisecond)))
	enqueue(t, q, "x")
	require.Equal(t, "x", string(dequeueWithin(t, q, 10*time.Second).Value))
	time.Sleep(400 * time.Millisecond)
	enqueue(t, q, "y")
	require.Equal(t, []string{"d1", "y"}, drain(t, q))

	// A delayed item enqueued after the consumer last looked, and due by the
	// time it looks again, is not passed over.
	enqueue(t, q, "p", "q")
	require.Equal(t, "p", string(dequeueWithin(t, q, 10*time.Second).Value))
	require.NoError(t, newQueue(t, cli, pfx).Enqueue(ctx, []byte("urgent-later"),
		queue.WithDelay(100*time.Millisecond), queue.WithPriority(-1)))
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, []string{"urgent-later", "q"}, drain(t, q))
}

func TestDequeueBlocksUntilEnqueue(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx)
	producer := newQueue(t, testutil.Client(t, srv), pfx)

	got := make(chan queue.Item, 1)
	errc := make(chan error, 1)
	go func() {
		it, err := q.Dequeue(t.Context())
		if err != nil {
			errc <- err
			return
		}
		got <- it
	}()
	select {
	case it := <-got:
		t.Fatalf("Dequeue on an empty queue returned %q", it.Value)
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(300 * time.Millisecond):
	}
	enqueue(t, producer, "hello")
	select {
	case it := <-got:
		require.Equal(t, "hello", string(it.Value))
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Dequeue did not return after an enqueue")
	}
}

func TestDequeueCancelled(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	q := newQueue(t, cli, pfx)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := q.Dequeue(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = q.Dequeue(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "already cancelled")
	// The handle still works, and nothing was lost.
	enqueue(t, q, "a")
	require.Equal(t, []string{"a"}, drain(t, q))
}

// TestDequeueCancelledMidRequest cancels Dequeue while its requests are in
// flight (responses are delayed), where the item may or may not have been
// taken. Either it is returned or it stays in the queue: never lost.
func TestDequeueCancelledMidRequest(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := es.Client()
	q := queue.New(es.ProxyClient(t, 0), "/mid/q")
	const n = 6
	for i := range n {
		require.NoError(t, queue.New(direct, "/mid/q").Enqueue(t.Context(), []byte(fmt.Sprint(i))))
	}
	es.Member(0).DelayResponses(300*time.Millisecond, 0)
	var got []string
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(50+100*i)*time.Millisecond)
		it, err := q.Dequeue(ctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			continue
		}
		got = append(got, string(it.Value))
	}
	es.Member(0).Undelay()
	rest := drain(t, queue.New(direct, "/mid/q"))
	require.ElementsMatch(t, []string{"0", "1", "2", "3", "4", "5"}, append(got, rest...),
		"returned %v, left %v", got, rest)
}

func TestBadInput(t *testing.T) {
	cli := testutil.Client(t, srv)
	require.PanicsWithValue(t, "queue: empty name", func() { queue.New(cli, "") })
	require.Panics(t, func() { queue.New(cli, "/") })
	require.Panics(t, func() { queue.New(nil, "x") })
	require.Panics(t, func() { queue.WithPriority(queue.MaxPriority + 1) })
	require.Panics(t, func() { queue.WithBatch(0) })
	const noSession = "queue: Claim needs a session: create the queue with WithSession"
	require.PanicsWithValue(t, noSession, func() { queue.New(cli, "/x").Claim(t.Context()) }, "Claim without a session")
	require.PanicsWithValue(t, noSession, func() { queue.New(cli, "/x").TryClaim(t.Context()) }, "TryClaim without a session")
	require.PanicsWithValue(t, "queue: WithSession(nil)", func() { queue.WithSession(nil) })
}

// TestConcurrentHandlesShareOneQueue runs several goroutines on one handle
// and several handles, and checks every item is handed out once.
func TestConcurrentHandlesShareOneQueue(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	shared := newQueue(t, cli, pfx)
	const items = 60
	for i := range items {
		require.NoError(t, shared.Enqueue(t.Context(), []byte(fmt.Sprint(i))))
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for i := range 4 {
		q := shared
		if i%2 == 1 {
			q = newQueue(t, testutil.Client(t, srv), pfx)
		}
		wg.Go(func() {
			for {
				it, err := q.TryDequeue(t.Context())
				if err != nil {
					if err != nil && !isEmpty(err) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				seen[string(it.Value)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, items)
	for v, n := range seen {
		require.Equal(t, 1, n, "item %s handed out %d times", v, n)
	}
}

func isEmpty(err error) bool { return errors.Is(err, queue.ErrEmpty) }
