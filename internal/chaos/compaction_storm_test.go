package chaos_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
)

// TestL8CompactionStorm is L8: the store is compacted to its current
// revision every 50 ms while waiters churn on one lock, so watches that
// start from a known revision (the hold's own-key watch behind Done) meet
// ErrCompacted. Every Lock is bounded by 30 s (a hang fails the test). It
// must reach N acquisitions with 0 overlap (occupancy and the recording
// fence store), no hold lost while nobody touched it, and 0 orphan keys.
//
// N = 1000 with 16 waiters, as planned (a few seconds under -race);
// CHAOS_L8_N raises it.
func TestL8CompactionStorm(t *testing.T) {
	const waiters = 16
	n := int64(envInt(t, "CHAOS_L8_N", 1000))
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	name := pfx + "lock"
	store := chaos.NewFenceStore(t, chaos.Recording)
	r := chaos.Rand(t)

	var (
		acquired, overlap, falseLoss, compactions atomic.Int64
		inside                                    atomic.Int32
		wg                                        sync.WaitGroup
	)
	stop := make(chan struct{})
	compactor := make(chan struct{})
	go func() {
		defer close(compactor)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			if _, err := srv.Compact(ctx); err == nil {
				compactions.Add(1)
			}
			cancel()
		}
	}()
	for w := range waiters {
		m := mutex.New(testutil.Session(t, testutil.Client(t, srv), 10), name)
		fc := chaos.NewFenceClient(store.URL(), w)
		t.Cleanup(fc.Close)
		wr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
		wg.Go(func() {
			for acquired.Load() < n {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				err := m.Lock(ctx)
				if errors.Is(err, context.DeadlineExceeded) {
					cancel()
					t.Errorf("waiter %d: Lock hung for 30 s: %v", w, err)
					return
				}
				if err != nil {
					cancel()
					t.Errorf("waiter %d: Lock: %v", w, err)
					return
				}
				acquired.Add(1)
				if inside.Add(1) != 1 {
					overlap.Add(1)
				}
				done := m.Done() // starts the hold's own-key watch, from its create revision
				tok := m.Token()
				fc.Begin(ctx, tok)
				time.Sleep(chaos.Uniform(wr, 0, 2*time.Millisecond))
				fc.Write(ctx, tok, []int{w})
				select {
				case <-done:
					falseLoss.Add(1)
					t.Errorf("waiter %d: hold ended while held: %v", w, m.Err())
				default:
				}
				inside.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					t.Errorf("waiter %d: Unlock: %v", w, err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(stop)
	<-compactor

	left := keysUnder(t, cli, name)
	ov := chaos.Overlaps(store.Log())
	chaos.Report(t, "L8", "acquisitions", acquired.Load(), "compactions", compactions.Load(),
		"overlap", overlap.Load(), "fenceOverlaps", len(ov), "falseLoss", falseLoss.Load(), "orphans", len(left))
	chaos.RequireAtLeast(t, "acquisitions", int(acquired.Load()), int(n))
	chaos.RequireAtLeast(t, "compactions", int(compactions.Load()), 10)
	if overlap.Load() != 0 || len(ov) != 0 {
		t.Errorf("critical sections overlapped: %d by occupancy, %d by the fence store", overlap.Load(), len(ov))
	}
	if len(left) != 0 {
		t.Errorf("orphan keys: %v", left)
	}
}
