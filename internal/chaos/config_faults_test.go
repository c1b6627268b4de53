//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
)

// TestCFG1Config is CFG1: a publisher publishes a configuration every
// ~50 ms (its data the publisher's own counter, so data and version rise
// together) while four Watchers follow it, each on a client behind its own
// proxies to the three members (two with the default check interval, two
// with 1 s); the etcd leader is SIGKILLed and restarted every 5 s and,
// every 3–5 s, one Watcher's client is cut off for 2–6 s and healed.
//
// Every Watcher ends on the last published version with its data, and
// never applies a version or data older than one it applied before. The
// fault bit: a healed Watcher was behind the publisher when it was healed
// (it missed publishes while cut off) and caught up.
func TestCFG1Config(t *testing.T) {
	const watchers = 4
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	name := "/chaos/cfg1/app"
	decode := func(b []byte) (int, error) { return strconv.Atoi(string(b)) }

	type applied struct{ version, data int64 }
	var (
		mu        sync.Mutex // guards backwards, history
		backwards []string
		history   = make([][]applied, watchers)
		ws        []*config.Watcher[int]
		cuts      []cutoff
	)
	startCtx, cancelStart := context.WithTimeout(t.Context(), waitBound)
	defer cancelStart()
	for k := range watchers {
		cut := newCutoff(t, c)
		cuts = append(cuts, cut)
		var opts []config.Option
		if k%2 == 1 {
			opts = append(opts, config.WithCheckInterval(time.Second))
		}
		w, err := config.Watch(startCtx, cut.client(t), name, decode, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Subscribers run on the Watcher's goroutine right after the value
		// is applied, so Version is the new value's.
		w.Subscribe(func(old, n int) {
			v := applied{w.Version(), int64(n)}
			mu.Lock()
			defer mu.Unlock()
			if h := history[k]; len(h) > 0 && (v.version <= h[len(h)-1].version || v.data <= h[len(h)-1].data) {
				backwards = append(backwards, fmt.Sprintf("watcher %d applied %+v after %+v", k, v, h[len(h)-1]))
			}
			history[k] = append(history[k], v)
		})
		ws = append(ws, w)
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	pub := c.NewClient(t)
	var (
		wg                  sync.WaitGroup
		pmu                 sync.Mutex // guards lastOK
		lastOK              int64      // the last version Publish acknowledged
		published, failures int
		kills               int
	)
	pr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	wg.Go(func() {
		for n := 1; ctx.Err() == nil; n++ {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			v, err := config.Publish(pctx, pub, name, []byte(strconv.Itoa(n)))
			pcancel()
			if err != nil {
				failures++
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			published++
			pmu.Lock()
			lastOK = v
			pmu.Unlock()
			sleepCtx(ctx, chaos.Uniform(pr, 30*time.Millisecond, 70*time.Millisecond))
		}
	})
	wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })
	var partitions, behind int
	var maxCatchUp time.Duration
	for sleepCtx(ctx, chaos.Uniform(r, 3*time.Second, 5*time.Second)) {
		k := r.IntN(watchers)
		cuts[k].partition()
		sleepCtx(ctx, chaos.Uniform(r, 2*time.Second, 6*time.Second))
		cuts[k].heal()
		partitions++
		pmu.Lock()
		target := lastOK
		pmu.Unlock()
		if ws[k].Version() >= target {
			continue
		}
		behind++
		t0 := time.Now()
		wctx, wcancel := context.WithTimeout(t.Context(), waitBound)
		err := ws[k].WaitFor(wctx, target)
		wcancel()
		if err != nil {
			t.Fatalf("watcher %d after its heal: %v", k, err)
		}
		maxCatchUp = max(maxCatchUp, time.Since(t0))
	}
	testutil.Within(t, afterRun(ctx), "the publisher and the nemesis", wg.Wait)

	hctx, _ := settled(t, c)
	final, err := config.Get(hctx, c.Client(), name)
	if err != nil {
		t.Fatal(err)
	}
	var wrong []string
	for k, w := range ws {
		if err := w.WaitFor(hctx, final.Version); err != nil {
			t.Fatalf("watcher %d: %v", k, err)
		}
		want, _ := decode(final.Data)
		if w.Version() != final.Version || w.Load() != want {
			wrong = append(wrong, fmt.Sprintf("watcher %d on version %d data %d, want %d data %d", k, w.Version(), w.Load(), final.Version, want))
		}
	}
	mu.Lock()
	applies := 0
	for _, h := range history {
		applies += len(h)
	}
	back := backwards
	mu.Unlock()
	chaos.Report(t, "CFG1", "duration", d, "leaderKills", kills, "partitions", partitions, "published", published,
		"publishFailures", failures, "lastVersion", final.Version, "applies", applies, "healedBehind", behind,
		"maxCatchUpAfterHeal", maxCatchUp, "backwards", len(back), "notOnLast", len(wrong))
	chaos.RequireAtLeast(t, "publishes", published, int(d.Seconds()))
	chaos.RequireAtLeast(t, "leader kills", kills, 1)
	chaos.RequireBit(t, "a watcher cut off missed publishes", behind)
	for _, b := range back {
		t.Errorf("older value applied after a newer one: %s", b)
	}
	for _, s := range wrong {
		t.Errorf("not on the last published version: %s", s)
	}
}
