package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
)

// TestL1BaselineMutex is L1: contenders take one lock in turn with no
// fault. Judged by an occupancy counter, the recording fence store
// (no overlap, no lost acknowledged add, tokens increase in grant order)
// and porcupine's strict-mutex model, which must find the history Ok.
//
// The plan's N = 8 × 250 is scaled to 8 × 100 so that the whole tier-1
// package stays near 90 s under -race on two shared cores;
// CHAOS_L1_ROUNDS=250 runs the plan's count (about 12 s under -race).
func TestL1BaselineMutex(t *testing.T) {
	const workers = 8
	rounds := envInt(t, "CHAOS_L1_ROUNDS", 100)
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	store := chaos.NewFenceStore(t, chaos.Recording)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	first, err := cli.Get(t.Context(), "chaos-l1-start")
	if err != nil {
		t.Fatal(err)
	}

	var (
		inside  atomic.Int32
		overlap atomic.Int32
		mu      sync.Mutex // guards grants, acked
		grants  []int64
		acked   []int
		wg      sync.WaitGroup
	)
	for w := range workers {
		m := mutex.New(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"lock")
		fc := chaos.NewFenceClient(store.URL(), w)
		t.Cleanup(fc.Close)
		wr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
		wg.Go(func() {
			for i := range rounds {
				ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
				err := lockedStep(ctx, t, rec, m, w, func(tok int64) error {
					if n := inside.Add(1); n != 1 {
						overlap.Add(1)
					}
					defer inside.Add(-1)
					mu.Lock()
					grants = append(grants, tok)
					mu.Unlock()
					if err := fc.Begin(ctx, tok); err != nil {
						return err
					}
					x := w*100000 + i
					ok, err := lockSetAdd(ctx, fc, tok, x)
					if ok {
						mu.Lock()
						acked = append(acked, x)
						mu.Unlock()
					}
					time.Sleep(chaos.Uniform(wr, 0, 2*time.Millisecond))
					return err
				})
				cancel()
				if err != nil {
					t.Errorf("worker %d round %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()

	log := store.Log()
	chaos.Report(t, "L1", "acquisitions", len(grants), "overlap", overlap.Load(),
		"fenceOverlaps", len(chaos.Overlaps(log)), "lost", len(chaos.LostAdds(acked, store.Set())))
	chaos.RequireAtLeast(t, "acquisitions", len(grants), workers*rounds)
	if n := overlap.Load(); n != 0 {
		t.Errorf("%d critical sections overlapped", n)
	}
	if ov := chaos.Overlaps(log); len(ov) != 0 {
		t.Errorf("fence store saw %d writes after a newer token: first %+v", len(ov), ov[0])
	}
	if lost := chaos.LostAdds(acked, store.Set()); len(lost) != 0 {
		t.Errorf("%d acknowledged adds lost: %v", len(lost), lost)
	}
	if err := chaos.TokensIncrease(grants); err != nil {
		t.Error(err)
	}
	last, err := cli.Get(t.Context(), "chaos-l1-end")
	if err != nil {
		t.Fatal(err)
	}
	owners, err := chaos.Owners(t.Context(), cli, pfx+"lock/", first.Header.Revision, last.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if bad := chaos.Ungranted(grants, owners); len(bad) != 0 {
		t.Errorf("Lock returned tokens that never owned the lock in etcd's history: %v", bad)
	}
	rec.Check(t, chaos.MutexModel.ToModel(), porcupine.Ok, time.Minute)
}

// lockedStep runs one Lock, body, Unlock cycle of client c, recording the
// acquire and the release in rec. A Lock error is returned (an acquire that
// failed changed nothing, as Lock promises); a body error is returned after
// Unlock.
func lockedStep(ctx context.Context, tb testing.TB, rec *chaos.Recorder, m *mutex.Mutex, c int, body func(tok int64) error) error {
	id := rec.Call(c, chaos.MutexOp{Client: c})
	if err := m.Lock(ctx); err != nil {
		rec.Return(id, chaos.Fail)
		return fmt.Errorf("Lock: %w", err)
	}
	rec.Return(id, chaos.OK)
	berr := body(m.Token())
	id = rec.Call(c, chaos.MutexOp{Client: c, Release: true})
	if err := m.Unlock(ctx); err != nil {
		rec.Unknown(id, chaos.Unknown)
		return fmt.Errorf("Unlock: %w", err)
	}
	rec.Return(id, chaos.OK)
	return berr
}
