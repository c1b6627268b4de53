//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestL9HolderCrashRelease is L9: a holder process (TTL 5 s) is SIGKILLed
// while a waiter queues behind it; the waiter must get the lock within
// TTL + 1.5 s of the kill (C-LIVE), with no one's help. Every other trial
// also SIGKILLs the etcd leader 1 s after the holder (restarted 1 s later):
// then the bound is 2×TTL + election timeout + 2 s. Trials run one after
// another for the run's duration (at least 4).
func TestL9HolderCrashRelease(t *testing.T) {
	const ttl = 5
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	r := chaos.Rand(t)
	cli := c.NewClient(t)
	ws, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	name := "/chaos/l9/lock"

	var plain, withKill []time.Duration
	deadline := time.Now().Add(d)
	for k := 0; k < 4 || time.Now().Before(deadline); k++ {
		leaderKill := k%2 == 1
		lines := make(chan chaos.Line, 16)
		env := holderEnv{Endpoints: c.Endpoints(), Name: name, TTL: ttl, Forever: true, Seed: r.Uint64()}
		h := chaos.StartHelper(t, k, "holder", env.environ(), lines)
		select {
		case l := <-lines:
			if len(l.Fields) == 0 || l.Fields[0] != "ACQUIRED" {
				t.Fatalf("trial %d: holder said %v", k, l.Fields)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("trial %d: holder did not acquire", k)
		}
		waiter := mutex.New(ws, name)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		got := make(chan error, 1)
		go func() { got <- waiter.Lock(ctx) }()
		for len(keysUnder(t, cli, name)) < 2 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		killed := time.Now()
		h.Kill()
		if leaderKill {
			time.Sleep(time.Second)
			if l := c.Leader(ctx); l >= 0 {
				c.Kill(l)
				time.Sleep(time.Second)
				if err := c.Restart(l); err != nil {
					t.Fatal(err)
				}
			}
		}
		var err error
		testutil.Within(t, afterRun(ctx), "the waiter's Lock", func() { err = <-got })
		took := time.Since(killed)
		cancel()
		if err != nil {
			t.Fatalf("trial %d: waiter's Lock: %v", k, err)
		}
		bound := time.Duration(ttl)*time.Second + 1500*time.Millisecond
		if leaderKill {
			withKill = append(withKill, took)
			bound = 2*time.Duration(ttl)*time.Second + 3*time.Second
		} else {
			plain = append(plain, took)
		}
		if took > bound {
			t.Errorf("trial %d (leader kill %v): the lock passed %v after the holder died, want ≤ %v", k, leaderKill, took.Round(time.Millisecond), bound)
		}
		uctx, ucancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := waiter.Unlock(uctx); err != nil {
			t.Errorf("trial %d: Unlock: %v", k, err)
		}
		ucancel()
		hctx, hcancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := c.WaitHealthy(hctx); err != nil {
			t.Fatal(err)
		}
		hcancel()
	}
	chaos.Report(t, "L9", "trials", len(plain)+len(withKill), "handover", fmtDurations(plain), "handoverWithLeaderKill", fmtDurations(withKill))
}

func fmtDurations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	lo, hi := ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return fmt.Sprintf("n=%d,min=%v,max=%v", len(ds), lo.Round(time.Millisecond), hi.Round(time.Millisecond))
}
