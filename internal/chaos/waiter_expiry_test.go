package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestL7WaiterSessionExpiry is L7, for every kind of hold: a waiter's
// (candidate's, reader's behind a writer, ...) lease is lost while it waits
// behind a holder that does not release. Acquire (Lock, Campaign, RLock,
// semaphore Acquire) must return an error (the lease's loss, not the
// holder's release, ends the wait: it returns while the holder still
// holds), and it must never return nil with its own key absent. Two ways to
// lose the lease: revoke it (20 trials, one after another), or cut the
// waiter's client off past its TTL (8 trials side by side, each through its
// own proxy; the plan's 20 are scaled down for tier 1, CHAOS_L7_TRIALS
// raises both). The rows added after the mutex and the election run half
// (a quarter, for the writer behind a reader) of those trials, and the rows
// run side by side, to keep tier 1 near 75 s. The slowest return after the
// fault is reported per row, not judged (a shared 2-core machine makes
// timing assertions flaky).
func TestL7WaiterSessionExpiry(t *testing.T) {
	for _, p := range primitives {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			waiterExpiry(t, p)
		})
	}
}

func waiterExpiry(t *testing.T, p primitive) {
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	revokes := p.trials(envInt(t, "CHAOS_L7_TRIALS", 20))
	partitions := min(revokes, p.trials(8))
	errLost, errExpired := p.lost, p.expired

	var (
		mu                sync.Mutex
		returned, nilLock int
		errsSeen          = map[string]int{}
		slowest           time.Duration
	)
	judge := func(k int, res waiterResult) {
		mu.Lock()
		defer mu.Unlock()
		slowest = max(slowest, res.latency)
		if res.err == nil {
			nilLock++
			t.Errorf("trial %d: Lock returned nil after its lease was lost (own key present: %v)", k, res.keyPresent)
			return
		}
		returned++
		switch {
		case errors.Is(res.err, errExpired):
			errsSeen["ErrSessionExpired"]++
		case errors.Is(res.err, errLost):
			errsSeen["ErrLost"]++
		default:
			t.Errorf("trial %d: Lock = %v, want ErrSessionExpired or ErrLost", k, res.err)
		}
	}
	t.Run("revoke", func(t *testing.T) {
		for k := range revokes {
			res, err := waiterTrial(t, cli, fmt.Sprintf("%srevoke%d/lock", pfx, k), nil, p)
			if err != nil {
				t.Fatalf("trial %d: %v", k, err)
			}
			judge(k, res)
		}
	})
	t.Run("partition", func(t *testing.T) {
		var wg sync.WaitGroup
		for k := range partitions {
			wg.Go(func() {
				px := chaos.NewProxy(t, srv.Endpoints()[0])
				res, err := waiterTrial(t, cli, fmt.Sprintf("%scut%d/lock", pfx, k), px, p)
				if err != nil {
					t.Errorf("trial %d: %v", k, err)
					return
				}
				judge(k, res)
			})
		}
		wg.Wait()
	})
	chaos.Report(t, "L7 "+t.Name(), "trials", revokes+partitions, "lockReturnedError", returned, "lockReturnedNil", nilLock, "errors", errsSeen,
		"slowestReturn", slowest.Round(time.Millisecond))
	chaos.RequireAtLeast(t, "trials that ended", returned+nilLock, revokes+partitions)
}

type waiterResult struct {
	err        error
	keyPresent bool
	latency    time.Duration // from the fault to Acquire's return
}

// waiterTrial queues a waiter behind a holder on name, then loses the
// waiter's lease: by revoking it when px is nil, or by partitioning px (the
// waiter's only route to etcd) until Lock returns. The holder releases only
// after Lock has returned.
func waiterTrial(t *testing.T, direct *clientv3.Client, name string, px *chaos.Proxy, p primitive) (waiterResult, error) {
	var res waiterResult
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	holder := p.holds()(testutil.Session(t, direct, 10), name)
	if err := holder.Acquire(ctx); err != nil {
		return res, err
	}
	wcli := direct
	if px != nil {
		wcli = px.Client(t)
	}
	ws, err := concurrency.NewSession(wcli, concurrency.WithTTL(2))
	if err != nil {
		return res, err
	}
	defer ws.Close()
	waiter := p.new(ws, name)
	got := make(chan error, 1)
	go func() { got <- waiter.Acquire(ctx) }()
	for len(keysUnder(t, direct, name)) < 2 {
		select {
		case err := <-got:
			return res, fmt.Errorf("waiter's Lock returned %v before it queued", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	faulted := time.Now()
	if px == nil {
		if _, err := direct.Revoke(ctx, ws.Lease()); err != nil {
			return res, err
		}
	} else {
		px.Partition()
	}
	select {
	case res.err = <-got:
		res.latency = time.Since(faulted)
	case <-ctx.Done():
		return res, errors.New("Lock did not return after the waiter's lease was lost")
	}
	if px != nil {
		px.Heal()
	}
	if res.err == nil {
		res.keyPresent = exists(t, direct, waiter.Key())
	}
	if err := holder.Err(); err != nil {
		return res, fmt.Errorf("the holder lost its hold: %w", err)
	}
	return res, holder.Release(ctx)
}
