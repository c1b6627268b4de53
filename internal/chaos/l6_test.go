package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ambiguousResult counts what one acquirer's trials saw.
type ambiguousResult struct {
	trials, acquired, failed int
	orphans                  int // a failed Lock left its key behind
	probeBlocked             int // the probe's TryLock found the lock taken after a failed Lock
	landed                   int // failed Locks whose key was written (the fault bit)
}

// TestL6AmbiguousAcquire is L6: Lock is cancelled by its deadline while its
// requests are in flight and their responses delayed, so the key may or may
// not have been written. After every failed Lock the acquirer's key must be
// gone at once, and a probe's TryLock must succeed: 0 orphans. The fault
// bites when a failed Lock's key was written (counted by watching the
// name). Election candidates whose Campaign is cancelled the same way run
// alongside (4 of them, judged the same way), and so does etcd's
// concurrency.Mutex, as a control that is
// expected to leave orphans (F4), which are reported, not judged.
//
// The plan's 200 trials are scaled to 48 (12 acquirers side by side, each on
// its own proxy and name, 4 trials each, about 10 s) for tier 1;
// CHAOS_L6_TRIALS sets the trials per acquirer.
func TestL6AmbiguousAcquire(t *testing.T) {
	perAcquirer := envInt(t, "CHAOS_L6_TRIALS", 4)
	const acquirers, elections, controls = 12, 4, 3
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	r := chaos.Rand(t)

	var (
		mu                 sync.Mutex
		ours, elected, raw ambiguousResult
		wg                 sync.WaitGroup
	)
	for k := range acquirers + elections + controls {
		kind := "mutex"
		switch {
		case k >= acquirers+elections:
			kind = "control"
		case k >= acquirers:
			kind = "election"
		}
		seed1, seed2 := r.Uint64(), r.Uint64()
		wg.Go(func() {
			res, err := ambiguousTrials(t, cli, fmt.Sprintf("%s%d/lock", pfx, k), perAcquirer, kind, rand.New(rand.NewPCG(seed1, seed2)))
			if err != nil {
				t.Errorf("acquirer %d: %v", k, err)
			}
			mu.Lock()
			defer mu.Unlock()
			sum := &ours
			switch kind {
			case "control":
				sum = &raw
			case "election":
				sum = &elected
			}
			sum.trials += res.trials
			sum.acquired += res.acquired
			sum.failed += res.failed
			sum.orphans += res.orphans
			sum.probeBlocked += res.probeBlocked
			sum.landed += res.landed
		})
	}
	wg.Wait()
	chaos.Report(t, "L6 election (Campaign)", "trials", elected.trials, "acquired", elected.acquired, "failed", elected.failed,
		"failedAfterKeyWritten", elected.landed, "orphans", elected.orphans, "probeBlocked", elected.probeBlocked)
	if elected.orphans != 0 || elected.probeBlocked != 0 {
		t.Errorf("election: %d orphan keys, %d probes blocked after a failed Campaign", elected.orphans, elected.probeBlocked)
	}
	chaos.Report(t, "L6 mutex", "trials", ours.trials, "acquired", ours.acquired, "failed", ours.failed,
		"failedAfterKeyWritten", ours.landed, "orphans", ours.orphans, "probeBlocked", ours.probeBlocked)
	chaos.Report(t, "L6 control (etcd concurrency.Mutex)", "trials", raw.trials, "failed", raw.failed,
		"failedAfterKeyWritten", raw.landed, "orphans", raw.orphans, "probeBlocked", raw.probeBlocked)
	chaos.RequireAtLeast(t, "trials", ours.trials, acquirers*perAcquirer)
	chaos.RequireBit(t, "Lock failed after its key was written", ours.landed)
	if ours.orphans != 0 || ours.probeBlocked != 0 {
		t.Errorf("coordkit: %d orphan keys, %d probes blocked after a failed Lock", ours.orphans, ours.probeBlocked)
	}
}

// ambiguousTrials runs one acquirer's trials on name through its own
// proxy, with responses delayed U(0.3 s, 2 s) and Lock deadlines U(50 ms,
// 1.5 s).
func ambiguousTrials(t *testing.T, direct *clientv3.Client, name string, trials int, kind string, r *rand.Rand) (ambiguousResult, error) {
	var res ambiguousResult
	control := kind == "control"
	px := chaos.NewProxy(t, srv.Endpoints()[0])
	s := testutil.Session(t, px.Client(t), 10)
	probe := mutex.New(testutil.Session(t, testutil.Client(t, srv), 10), name)
	leaseHex := fmt.Sprintf("%x", int64(s.Lease()))

	// Count the acquirer's key writes: each is a PUT of a key named after
	// its lease.
	wctx, stop := context.WithCancel(t.Context())
	defer stop()
	start, err := direct.Get(t.Context(), "chaos-l6-start")
	if err != nil {
		return res, err
	}
	puts := make(chan int, 1)
	wch := direct.Watch(wctx, name, clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	sentinel := name + "zz-sentinel"
	go func() {
		n := 0
		defer func() { puts <- n }()
		for wr := range wch {
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if k == sentinel {
					return
				}
				if ev.Type == mvccpb.PUT && strings.HasPrefix(k, name+"/"+leaseHex) {
					n++
				}
			}
		}
	}()

	for range trials {
		res.trials++
		px.DelayResponses(chaos.Uniform(r, 300*time.Millisecond, 2*time.Second), 0)
		ctx, cancel := context.WithTimeout(t.Context(), chaos.Uniform(r, 50*time.Millisecond, 1500*time.Millisecond))
		var unlock func(context.Context) error
		switch kind {
		case "control":
			m := concurrency.NewMutex(s, name)
			err, unlock = m.Lock(ctx), m.Unlock
		case "election":
			e := election.New(s, name)
			err, unlock = e.Campaign(ctx, "chaos"), e.Resign
		default:
			m := mutex.New(s, name)
			err, unlock = m.Lock(ctx), m.Unlock
		}
		cancel()
		if err == nil {
			res.acquired++
			uctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			err = unlock(uctx)
			cancel()
			px.Undelay()
			if err != nil {
				return res, fmt.Errorf("Unlock: %w", err)
			}
			continue
		}
		px.Undelay()
		// The delays also hold up the lease tracker's probes, so a Lock may
		// also give up because the lease could not be confirmed in time.
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, mutex.ErrLost) && !errors.Is(err, mutex.ErrSessionExpired) {
			return res, fmt.Errorf("Lock = %w, want a deadline or loss error", err)
		}
		res.failed++
		if left := keysUnder(t, direct, name); len(left) != 0 {
			res.orphans++
			if control {
				// Clean up after etcd's Mutex so the next trial starts clean.
				direct.Delete(t.Context(), name, clientv3.WithPrefix())
			} else {
				t.Errorf("failed Lock left %v", left)
			}
		}
		pctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		if err := probe.TryLock(pctx); err != nil {
			res.probeBlocked++
		} else if err := probe.Unlock(pctx); err != nil {
			cancel()
			return res, err
		}
		cancel()
	}
	if _, err := direct.Put(t.Context(), sentinel, ""); err != nil {
		return res, err
	}
	if _, err := direct.Delete(t.Context(), sentinel); err != nil {
		return res, err
	}
	n := <-puts
	res.landed = n - res.acquired
	return res, nil
}
