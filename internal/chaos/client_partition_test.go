package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// partitionResult is what one L3 trial observed.
type partitionResult struct {
	bit      bool // the holder's lease expired on the server and a successor took over
	overlaps int  // the holder's writes after the successor began
	late     int  // the holder learnt of its loss only after the successor began
	writes   int  // the holder's writes during the trial
}

// TestL3ClientPartition is L3, for every kind of hold (the mutex, the
// election's leader and next candidate, the rwmutex's writer behind a
// writer, reader behind a writer and writer behind a reader, and the
// semaphore): the holder's client is cut off from etcd (both directions,
// through its own proxy) while a successor waits. The holder writes to a
// recording fence store every 50 ms until its hold's Done closes, then
// records the end. With coordkit, Done must close before the successor's
// first write in every trial: 0 overlaps, 0 late ends. A control with
// etcd's concurrency.Mutex and Session.Done runs alongside; its overlaps are
// reported, not judged.
//
// The plan's 50 trials are scaled to 24 for the mutex (three rounds of 8
// side by side, each trial on its own proxy and lock name, about 4 s a
// round) and 8 for the election, to keep tier 1 near 75 s; the rows added
// later run their share of 8 (4 each, 2 for the writer behind a reader)
// in the third round. CHAOS_L3_TRIALS raises the mutex's count, and the
// others' with it.
func TestL3ClientPartition(t *testing.T) {
	trials := envInt(t, "CHAOS_L3_TRIALS", 24)
	const parallel, controls = 8, 4
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)

	var (
		mu      sync.Mutex
		results = map[string][]partitionResult{}
		k       int
	)
	run := func(kind string, holder, succ testutil.NewHold) func() {
		k++
		name := fmt.Sprintf("%s%d/lock", pfx, k)
		return func() {
			res, err := partitionTrial(t, cli, name, holder, succ)
			if err != nil {
				t.Errorf("%s trial %s: %v", kind, name, err)
				return
			}
			mu.Lock()
			results[kind] = append(results[kind], res)
			mu.Unlock()
		}
	}
	// The mutex runs in every round; the control joins the first, the
	// election the second and the later rows the third.
	extra := map[int][]primitive{1: primitives[1:2], 2: primitives[2:]}
	rounds := (trials + parallel - 1) / parallel
	for round := range max(rounds, 3) {
		var wg sync.WaitGroup
		for range min(parallel, max(0, trials-round*parallel)) {
			wg.Go(run("mutex", holds.NewMutex, holds.NewMutex))
		}
		if round == 0 {
			for range controls {
				wg.Go(run("control", holds.NewEtcdMutex, holds.NewMutex))
			}
		}
		for _, p := range extra[round] {
			for range p.trials(max(parallel, trials/3)) {
				wg.Go(run(p.name, p.holds(), p.new))
			}
		}
		wg.Wait()
	}

	sum := func(rs []partitionResult) (bit, overlaps, late, writes int) {
		for _, r := range rs {
			if r.bit {
				bit++
			}
			overlaps += r.overlaps
			late += r.late
			writes += r.writes
		}
		return
	}
	for _, p := range primitives {
		rs := results[p.name]
		bit, overlaps, late, writes := sum(rs)
		chaos.Report(t, "L3 "+p.name, "trials", len(rs), "faultBit", bit, "writes", writes, "overlaps", overlaps, "lateEnds", late)
		want := trials
		if p.name != "mutex" {
			want = p.trials(max(parallel, trials/3))
		}
		chaos.RequireAtLeast(t, p.name+" trials", len(rs), want)
		if bit != len(rs) {
			t.Errorf("%s: the partition bit in %d of %d trials (the holder's lease must expire and the successor take over)", p.name, bit, len(rs))
		}
		if overlaps != 0 || late != 0 {
			t.Errorf("%s: coordkit holder acted after its successor began: %d overlapping writes, %d late ends", p.name, overlaps, late)
		}
	}
	rbit, roverlaps, rlate, _ := sum(results["control"])
	chaos.Report(t, "L3 control (etcd concurrency.Mutex + Session.Done)", "trials", len(results["control"]), "faultBit", rbit, "overlaps", roverlaps, "lateEnds", rlate)
}

// partitionTrial runs one L3 trial on name, judged on its own recording
// store.
func partitionTrial(t *testing.T, direct *clientv3.Client, name string, newHolder, newSucc testutil.NewHold) (partitionResult, error) {
	var res partitionResult
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	store := chaos.NewFenceStore(t, chaos.Recording)
	px := chaos.NewProxy(t, srv.Endpoints()[0])
	hs := testutil.Session(t, px.Client(t), 2)
	holder := newHolder(hs, name)
	if err := holder.Acquire(ctx); err != nil {
		return res, fmt.Errorf("holder: %w", err)
	}
	// A coordkit hold's Done closes on the client's own clock when the
	// lease can no longer be confirmed; etcd's, when the session ends.
	htok, done := holder.Token(), holder.Done()
	hfc := chaos.NewFenceClient(store.URL(), 0)
	defer hfc.Close()
	if err := hfc.Begin(ctx, htok); err != nil {
		return res, err
	}

	// The successor queues behind the holder through a direct client.
	succ := newSucc(testutil.Session(t, testutil.Client(t, srv), 10), name)
	sfc := chaos.NewFenceClient(store.URL(), 1)
	defer sfc.Close()
	succErr := make(chan error, 1)
	go func() {
		if err := succ.Acquire(ctx); err != nil {
			succErr <- fmt.Errorf("successor Lock: %w", err)
			return
		}
		tok := succ.Token()
		err := sfc.Begin(ctx, tok)
		if err == nil {
			err = sfc.Write(ctx, tok, []int{1})
		}
		if uerr := succ.Release(ctx); err == nil {
			err = uerr
		}
		succErr <- err
	}()
	for len(keysUnder(t, direct, name)) < 2 {
		select {
		case err := <-succErr:
			return res, fmt.Errorf("successor finished before queueing: %v", err)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}

	// The holder writes until told the hold is gone.
	holderDone := make(chan struct{})
	go func() {
		defer close(holderDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				hfc.End(ctx, htok)
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case <-done:
				continue
			default:
			}
			hfc.Write(ctx, htok, []int{0})
		}
	}()
	px.Partition()
	var serr error
	select {
	case serr = <-succErr:
	case <-ctx.Done():
		serr = fmt.Errorf("successor: %w", ctx.Err())
	}
	<-holderDone
	px.Heal()
	if serr != nil {
		return res, serr
	}
	res.bit = !leaseAlive(t, direct, hs.Lease())
	log := store.Log()
	res.overlaps = len(chaos.Overlaps(log))
	res.late = len(chaos.LateEnds(log))
	for _, ev := range log {
		if ev.Kind == chaos.KindWrite && ev.Tok == htok {
			res.writes++
		}
	}
	return res, nil
}
