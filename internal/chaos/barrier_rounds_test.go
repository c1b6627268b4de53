//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// b1Stuck bounds every Enter, Leave and Wait: one that has not returned
// after it is a deadlock (the plan's "no deadlock > 30 s").
const b1Stuck = 30 * time.Second

// TestB1Barrier is B1: five participant processes go round a double
// barrier for 5 (Enter, work U(0, 300 ms), Leave) and then Wait on a single
// barrier that the test holds for U(0.5, 2 s) every U(1, 3) s, while, every
// ~6 s, a random participant is SIGSTOPped for U(TTL+3, TTL+6) s (TTL 2 s)
// and the etcd leader is SIGKILLed and restarted every 5 s.
//
// Judged: nobody passes Enter before all have entered (the ready marker it
// passed on was written, in etcd's history, when exactly 5 participants up
// to the last one let in were present, itself among them); nobody returns
// from Leave while a participant of its round is still inside; nobody
// returns from a Wait called after a hold was acknowledged before that hold
// was released; no Enter, Leave or Wait blocks longer than 30 s. Guards:
// enough rounds verified, Waits that really waited, and the pause bit (a
// paused participant's session expired).
func TestB1Barrier(t *testing.T) {
	const ttl, count = 2, 5
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	dname, bname := "/chaos/b1/double", "/chaos/b1/single"

	from := revision(t, c)
	type entered struct{ key, readyRev, last int64 }
	var (
		mu                                 sync.Mutex // guards the rest of this block
		enters                             []entered
		leftEarly, leaves, stuck, sessLost int
		waits                              [][2]int64 // Wait call and return, Unix ns
		failures                           = map[string]int{}
	)
	lines := make(chan chaos.Line, 1024)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for l := range lines {
			f := l.Fields
			num := func(i int) int64 {
				if i >= len(f) {
					return 0
				}
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
			if len(f) == 0 {
				continue
			}
			mu.Lock()
			switch f[0] {
			case "ENTERED":
				enters = append(enters, entered{key: num(1), readyRev: num(2), last: num(3)})
			case "LEFT":
				leaves++
				if num(2) > 0 {
					leftEarly++
					t.Errorf("participant %d left round %d while %d of its round were still inside", l.Helper, num(1), num(2))
				}
			case "WAITED":
				waits = append(waits, [2]int64{num(1), num(2)})
			case "FAILED":
				msg := strings.Join(f[2:], " ")
				if u, err := strconv.Unquote(msg); err == nil {
					msg = u
				}
				failures[f[1]+": "+msg]++
				if strings.Contains(msg, "deadline exceeded") {
					stuck++
				}
				if strings.Contains(msg, "session expired") || strings.Contains(msg, "lost") {
					sessLost++
				}
			}
			mu.Unlock()
		}
	}()
	var procs []*chaos.Helper
	for i := range count {
		env := []string{
			"CHAOS_ENDPOINTS=" + strings.Join(c.Endpoints(), ","), "CHAOS_NAME=" + dname, "CHAOS_BARRIER=" + bname,
			"CHAOS_TTL=" + strconv.Itoa(ttl), "CHAOS_COUNT=" + strconv.Itoa(count), "CHAOS_SEED=" + strconv.FormatUint(r.Uint64(), 10),
		}
		procs = append(procs, chaos.StartHelper(t, i, "participant", env, lines))
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var (
		wg            sync.WaitGroup
		kills, pauses int
		holds         [][2]int64 // acknowledged Hold's return and first Release's call, Unix ns
	)
	wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })
	wg.Go(func() {
		for sleepCtx(ctx, chaos.Uniform(r, 4*time.Second, 8*time.Second)) {
			target := r.IntN(count)
			pause := chaos.Uniform(r, (ttl+3)*time.Second, (ttl+6)*time.Second)
			from := rec.Now()
			procs[target].Stop()
			time.Sleep(pause)
			procs[target].Cont()
			pauses++
			rec.Note(fmt.Sprintf("SIGSTOP participant %d for %v", target, pause.Round(time.Millisecond)), from, rec.Now())
		}
	})
	// The single barrier: hold, wait, release, until the run ends. A Hold
	// that failed may or may not have applied: it opens no judged window,
	// but is released all the same.
	b := barrier.New(c.NewClient(t), bname)
	br := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	for sleepCtx(ctx, chaos.Uniform(br, time.Second, 3*time.Second)) {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		herr := b.Hold(hctx)
		cancel()
		heldAt := time.Now().UnixNano()
		sleepCtx(ctx, chaos.Uniform(br, 500*time.Millisecond, 2*time.Second))
		releaseAt := time.Now().UnixNano()
		for {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := b.Release(rctx)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if herr == nil {
			holds = append(holds, [2]int64{heldAt, releaseAt})
		}
	}
	testutil.Within(t, waitBound, "the scenario's goroutines", wg.Wait)
	stopHelpers(t, procs, lines, collected)

	_, to := settled(t, c)
	// Replay the double barrier: at each ready marker's creation, who was
	// present up to the last one it lets in?
	type round struct {
		present map[int64]bool
		last    int64
	}
	rounds := map[int64]round{}
	dpfx := dname + "/"
	revs := testutil.Replay(t, c.Client(), dpfx, from, to, func(rev int64, keys map[string]*mvccpb.KeyValue) {
		ready := keys[dpfx+"ready"]
		if ready == nil || ready.CreateRevision != rev {
			return
		}
		lastIn, _ := strconv.ParseInt(string(ready.Value), 10, 64)
		rd := round{present: map[int64]bool{}, last: lastIn}
		for k, kv := range keys {
			if strings.HasPrefix(k, dpfx+"waiters/") && kv.CreateRevision <= lastIn {
				rd.present[kv.CreateRevision] = true
			}
		}
		rounds[rev] = rd
		if len(rd.present) != count {
			t.Errorf("revision %d: ready marker written with %d participants present up to %d, want %d", rev, len(rd.present), lastIn, count)
		}
	})

	mu.Lock()
	defer mu.Unlock()
	verified, early := 0, 0
	for _, e := range enters {
		if e.key == 0 || e.readyRev == 0 {
			continue // its key or the marker was gone when it looked (paused meanwhile)
		}
		rd, ok := rounds[e.readyRev]
		switch {
		case !ok:
			early++
			t.Errorf("a participant passed Enter on a ready marker (revision %d) that etcd's history never created", e.readyRev)
		case !rd.present[e.key] || len(rd.present) != count || rd.last != e.last:
			early++
			t.Errorf("a participant (key revision %d) passed Enter on round %d with %d present, itself present: %v", e.key, e.readyRev, len(rd.present), rd.present[e.key])
		default:
			verified++
		}
	}
	passedHeld, waited := 0, 0
	for _, w := range waits {
		for _, h := range holds {
			if w[0] > h[0] && w[1] < h[1] {
				passedHeld++
				t.Errorf("a Wait called %v after a hold was acknowledged returned %v before its release", time.Duration(w[0]-h[0]), time.Duration(h[1]-w[1]))
			}
			if w[0] < h[1] && w[1] > h[1] && w[1]-w[0] > int64(200*time.Millisecond) {
				waited++
			}
		}
	}
	if len(failures) > 0 {
		t.Logf("failures by cause: %v", failures)
	}
	chaos.Report(t, "B1", "duration", d, "rounds", len(rounds), "enters", len(enters), "entersVerified", verified,
		"passedBeforeAllEntered", early, "leaves", leaves, "leftBeforeRoundLeft", leftEarly, "holds", len(holds),
		"waits", len(waits), "waitsThatWaitedForRelease", waited, "passedWhileHeld", passedHeld, "stuckOver30s", stuck,
		"pauses", pauses, "sessionsLost", sessLost, "leaderKills", kills, "revisionsReplayed", revs)
	chaos.RequireAtLeast(t, "rounds", len(rounds), int(d.Seconds()/5))
	chaos.RequireAtLeast(t, "enters verified", verified, int(d.Seconds()/2))
	chaos.RequireAtLeast(t, "waits that waited for a release", waited, 1)
	chaos.RequireAtLeast(t, "leader kills", kills, 1)
	chaos.RequireBit(t, "paused participant's session expired", sessLost)
	if stuck != 0 {
		t.Errorf("%d Enter, Leave or Wait calls blocked longer than %v", stuck, b1Stuck)
	}
}
