package queue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestExactlyOnce is the queue's accounting check (RELIABILITY.md Q1,
// without the leader kills): 3 producers enqueue 500 items each while 3
// consumers dequeue, two of them with deadlines so short that many Dequeue
// calls are cancelled mid-flight. Judged on outcomes: no item is handed out
// twice, every acknowledged enqueue is handed out or still queued, and an
// enqueue whose outcome was unknown appears at most once. A replay of the
// queue's history checks that every item key was deleted at most once.
func TestExactlyOnce(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const producers, perProducer, consumers = 3, 500, 3
	start, err := cli.Get(t.Context(), "rev")
	require.NoError(t, err)

	var (
		mu        sync.Mutex
		acked     = map[string]bool{} // enqueues that returned nil
		ambiguous = map[string]bool{} // enqueues that returned an error
		got       = map[string]int{}  // items handed out, and how often
		received  atomic.Int64
		cancelled atomic.Int64 // Dequeue calls that ended by their deadline
		prodWG    sync.WaitGroup
		consWG    sync.WaitGroup
	)
	for p := range producers {
		q := newQueue(t, testutil.Client(t, srv), pfx)
		prodWG.Go(func() {
			for i := range perProducer {
				v := fmt.Sprintf("p%d-%03d", p, i)
				err := q.Enqueue(t.Context(), []byte(v))
				mu.Lock()
				if err != nil {
					ambiguous[v] = true
				} else {
					acked[v] = true
				}
				mu.Unlock()
			}
		})
	}
	stop, stopConsumers := context.WithCancel(t.Context())
	defer stopConsumers()
	for c := range consumers {
		q := newQueue(t, testutil.Client(t, srv), pfx)
		consWG.Go(func() {
			for stop.Err() == nil {
				ctx, cancel := stop, context.CancelFunc(func() {})
				if c < 2 {
					// Impatient consumers: deadlines from 1 ms to 20 ms cut
					// many calls short, in the read, the wait or the take.
					ctx, cancel = context.WithTimeout(stop, time.Duration(1+rand.IntN(20))*time.Millisecond)
				}
				it, err := q.Dequeue(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						t.Errorf("consumer %d: %v", c, err)
						return
					}
					cancelled.Add(1)
					continue
				}
				mu.Lock()
				got[string(it.Value)]++
				mu.Unlock()
				received.Add(1)
			}
		})
	}
	prodWG.Wait()
	// Wait until every acknowledged item has been handed out, or give up
	// after a generous deadline and let the accounting say what is missing.
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < int64(len(acked)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopConsumers()
	consWG.Wait()
	left := drain(t, newQueue(t, cli, pfx))

	mu.Lock()
	defer mu.Unlock()
	for _, v := range left {
		got[v]++
	}
	for v, n := range got {
		require.Equal(t, 1, n, "item %s handed out %d times", v, n)
		require.True(t, acked[v] || ambiguous[v], "item %s was never enqueued", v)
	}
	for v := range acked {
		require.Contains(t, got, v, "acknowledged item %s lost", v)
	}
	require.Len(t, acked, producers*perProducer, "no enqueue should fail on a healthy server")
	require.Greater(t, cancelled.Load(), int64(10), "the cancellation path was not exercised")
	t.Logf("%d items, %d left over, %d cancelled Dequeue calls", len(got), len(left), cancelled.Load())

	// Replay: every item key is created once and deleted at most once.
	deletes := replayDeletes(t, cli, pfx+"q/ready/", start.Header.Revision)
	for k, n := range deletes {
		require.Equal(t, 1, n, "key %s deleted %d times", k, n)
	}
	require.Len(t, deletes, len(got))
}

// replayDeletes reads the history of prefix since rev with a watch and
// counts the deletes of each key, up to a marker it writes now.
func replayDeletes(t *testing.T, cli *clientv3.Client, prefix string, rev int64) map[string]int {
	t.Helper()
	marker := prefix + "~replay-end"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	_, err := cli.Put(ctx, marker, "")
	require.NoError(t, err)
	defer cli.Delete(context.Background(), marker)
	deletes := map[string]int{}
	for wr := range wch {
		require.NoError(t, wr.Err())
		for _, ev := range wr.Events {
			k := string(ev.Kv.Key)
			if k == marker {
				return deletes
			}
			if ev.Type == mvccpb.DELETE && !strings.HasSuffix(k, "~") {
				deletes[k]++
			}
		}
	}
	t.Fatal("replay watch ended before the marker")
	return nil
}
