//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/queue"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestQ1Queue is Q1: three producers enqueue distinct items and three
// consumers dequeue them while the etcd leader is SIGKILLed every 5 s, and
// one consumer in four of its calls cancels Dequeue at a random moment
// (U(5 ms, 300 ms)), often while the delete is in flight. Exactly-once
// accounting: no item is delivered twice; every acknowledged enqueue is
// delivered, except at most one per Dequeue that failed without learning its
// outcome (Dequeue's documented at-most-once loss); an ambiguous enqueue is
// delivered at most once. Producers make 500 items each by default
// (CHAOS_Q1_ITEMS), spread over the run's duration.
func TestQ1Queue(t *testing.T) {
	const producers, consumers = 3, 3
	items := envInt(t, "CHAOS_Q1_ITEMS", 500)
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	name := "/chaos/q1/queue"

	var (
		mu                         sync.Mutex // guards acked, ambiguous, delivered
		acked, ambiguous           = map[string]bool{}, map[string]bool{}
		delivered                  = map[string]int{}
		unknownDeq                 atomic.Int64
		cancelledDeq, producedDone atomic.Int64
		wg                         sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var kills int
	wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })
	var pwg sync.WaitGroup
	for p := range producers {
		q := queue.New(c.NewClient(t), name)
		pwg.Go(func() {
			defer producedDone.Add(1)
			// Spread the items over the run, so that faults hit them.
			pace := d / time.Duration(items+1)
			for i := range items {
				if !sleepCtx(ctx, pace) {
					return
				}
				v := fmt.Sprintf("p%d-%d", p, i)
				ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := q.Enqueue(ectx, []byte(v))
				cancel()
				// Any error may have come while the write was in flight
				// (a killed leader answers nothing): count it as ambiguous.
				mu.Lock()
				if err == nil {
					acked[v] = true
				} else {
					ambiguous[v] = true
				}
				mu.Unlock()
			}
		})
	}
	consume := func(cli *clientv3.Client, id int, cr *rand.Rand) {
		q := queue.New(cli, name)
		for {
			if producedDone.Load() == producers {
				return
			}
			dctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			if id == 0 && cr.IntN(4) == 0 {
				dctx, cancel = context.WithTimeout(t.Context(), chaos.Uniform(cr, 5*time.Millisecond, 300*time.Millisecond))
			}
			it, err := q.Dequeue(dctx)
			cancel()
			switch {
			case err == nil:
				mu.Lock()
				delivered[string(it.Value)]++
				mu.Unlock()
			case errors.Is(err, context.DeadlineExceeded):
				cancelledDeq.Add(1)
			default:
				unknownDeq.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	var cwg sync.WaitGroup
	for i := range consumers {
		cli := c.NewClient(t)
		cr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
		cwg.Go(func() { consume(cli, i, cr) })
	}
	testutil.Within(t, afterRun(ctx), "the producers", pwg.Wait)
	testutil.Within(t, afterRun(ctx), "the consumers", cwg.Wait)
	cancel()
	testutil.Within(t, waitBound, "the nemesis", wg.Wait)

	// Drain what is left, with the cluster healthy again.
	hctx, hcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer hcancel()
	if err := c.WaitHealthy(hctx); err != nil {
		t.Fatal(err)
	}
	q := queue.New(c.Client(), name)
	for {
		it, err := q.TryDequeue(hctx)
		if errors.Is(err, queue.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		delivered[string(it.Value)]++
	}

	var dups, lost, ambDelivered []string
	for v, n := range delivered {
		if n > 1 {
			dups = append(dups, v)
		}
		if ambiguous[v] {
			ambDelivered = append(ambDelivered, v)
		}
	}
	for v := range acked {
		if delivered[v] == 0 {
			lost = append(lost, v)
		}
	}
	chaos.Report(t, "Q1", "duration", d, "leaderKills", kills, "acked", len(acked), "ambiguousEnqueues", len(ambiguous),
		"delivered", len(delivered), "ambiguousDelivered", len(ambDelivered),
		"duplicates", len(dups), "lostAcked", len(lost), "dequeueErrors", unknownDeq.Load(), "dequeuesCancelled", cancelledDeq.Load())
	chaos.RequireAtLeast(t, "leader kills", kills, 1)
	chaos.RequireAtLeast(t, "acknowledged enqueues", len(acked), int(d.Seconds()))
	if len(dups) != 0 {
		t.Errorf("%d items delivered more than once: %v", len(dups), dups)
	}
	if int64(len(lost)) > unknownDeq.Load() {
		t.Errorf("%d acknowledged items never delivered, more than the %d Dequeues that failed without an outcome: %v", len(lost), unknownDeq.Load(), lost)
	}
}
