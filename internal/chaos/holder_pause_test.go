//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestL2HolderPause is L2, Jepsen's lock-set with a pause nemesis: four
// holder processes take one lock (TTL 2 s) and each adds an element to a
// set by read, sleep U(0, 2 s), write back, on an enforcing fence store
// (fenced) and on a recording one (unfenced control). Every ~6 s the
// process that has just taken the lock (or a random one) is SIGSTOPped for
// U(TTL+1, TTL+3) s, long enough for its lease to expire and another to
// take over.
//
// Fenced: 0 stale writes accepted and 0 acknowledged adds lost. Control:
// at least one lost acknowledged add or a porcupine strict-mutex Illegal,
// which proves the pause bit: a lease lock alone did not keep the holders
// apart, and only the token kept the data right.
func TestL2HolderPause(t *testing.T) { pauseScenario(t, "L2", "mutex", 4, false) }

// TestE1ElectionSingleLeader is E1: as L2 with five candidate processes
// campaigning in an election, each leadership doing the fenced lock-set
// step and resigning, while the current leader process is SIGSTOPped past
// its TTL (U(TTL+3, TTL+6) s) and, every 5 s, the etcd leader is SIGKILLed
// and restarted. An
// independent Observe stream must see leader revisions that never go back,
// and Campaign must never return nil without its key.
func TestE1ElectionSingleLeader(t *testing.T) { pauseScenario(t, "E1", "election", 5, true) }

func pauseScenario(t *testing.T, scenario, kind string, nHolders int, leaderKills bool) {
	const ttl = 2
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	fenced := chaos.NewFenceStore(t, chaos.Enforcing)
	control := chaos.NewFenceStore(t, chaos.Recording)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	name := "/chaos/" + scenario + "/lock"

	from := revision(t, c)
	hs := newHolders(rec)
	lines := make(chan chaos.Line, 1024)
	collected := make(chan struct{})
	go hs.collect(lines, collected)
	var procs []*chaos.Helper
	for i := range nHolders {
		env := holderEnv{Kind: kind, Endpoints: c.Endpoints(), Name: name, TTL: ttl, HoldMax: 2 * time.Second,
			Fenced: fenced.URL(), Control: control.URL(), Seed: r.Uint64()}
		procs = append(procs, chaos.StartHelper(t, i, "holder", env.environ(), lines))
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var (
		wg           sync.WaitGroup
		kills        int
		observed     []election.LeaderInfo
		observeErr   error
		observeStart = make(chan struct{})
	)
	if kind == "election" {
		s, err := concurrency.NewSession(c.NewClient(t), concurrency.WithTTL(30))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		octx, ocancel := context.WithCancel(context.Background())
		defer ocancel()
		ch := election.New(s, name).Observe(octx)
		wg.Go(func() {
			close(observeStart)
			for {
				select {
				case <-ctx.Done():
					ocancel()
					for range ch {
					}
					return
				case li, ok := <-ch:
					if !ok {
						observeErr = fmt.Errorf("Observe's channel closed early")
						return
					}
					observed = append(observed, li)
				}
			}
		})
		testutil.WaitClosed(t, observeStart, waitBound, "the observer's start")
	}
	if leaderKills {
		wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })
	}

	var pauseWindows []window
	pauses, bit := 0, 0
	for sleepCtx(ctx, chaos.Uniform(r, 4*time.Second, 8*time.Second)) {
		// Pause a holder that has just entered its critical section (it
		// then has its read-sleep-write ahead of it), waiting up to 15 s
		// for one.
		target := hs.fresh(500 * time.Millisecond)
		for i := 0; target < 0 && i < 600 && sleepCtx(ctx, 25*time.Millisecond); i++ {
			target = hs.fresh(500 * time.Millisecond)
		}
		held := target >= 0
		if !held {
			target = r.IntN(nHolders)
		}
		p := procs[target]
		pause := chaos.Uniform(r, (ttl+1)*time.Second, (ttl+3)*time.Second)
		if leaderKills {
			// A new etcd leader extends every lease by its TTL plus an
			// election timeout: pause longer, or a kill during the pause
			// keeps the paused holder's lease alive to its end.
			pause = chaos.Uniform(r, (ttl+3)*time.Second, (ttl+6)*time.Second)
		}
		from := rec.Now()
		p.Stop()
		time.Sleep(pause)
		p.Cont()
		to := rec.Now()
		pauses++
		pauseWindows = append(pauseWindows, window{helper: target, from: from, to: to})
		rec.Note(fmt.Sprintf("SIGSTOP holder %d for %v", target, pause.Round(time.Millisecond)), from, to)
		n := hs.grantedDuring(target, from, to)
		if held && n > 0 {
			bit++
		}
		t.Logf("pause %d: holder %d (in its critical section: %v) stopped %v, %d grants to others meanwhile", pauses, target, held, pause.Round(time.Millisecond), n)
	}
	testutil.Within(t, waitBound, "the observer and the nemesis", wg.Wait)
	stopHelpers(t, procs, lines, collected)

	hs.mu.Lock()
	acquired, failed, lost, stale := hs.acquired, hs.failed, hs.lostHolds, hs.staleRejected
	if len(hs.failures) > 0 {
		t.Logf("failed acquisitions by cause: %v", hs.failures)
	}
	fAcked, cAcked := hs.fencedAcked, hs.controlAcked
	var noKey []window
	for _, w := range hs.noKey {
		if !w.overlapsAny(pauseWindows) {
			noKey = append(noKey, w)
		}
	}
	hs.mu.Unlock()
	// Every token a holder was given must have owned the line in etcd's
	// history (tokenMonotonic: the owners' sequence only grows).
	hctx, to := settled(t, c)
	owners, err := chaos.Owners(hctx, c.Client(), name+"/", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := chaos.TokensIncrease(owners); err != nil {
		t.Error(err)
	}
	if bad := chaos.Ungranted(hs.tokens(), owners); len(bad) != 0 {
		t.Errorf("holders were given tokens that never owned the line in etcd's history: %v", bad)
	}
	staleAccepted := chaos.StaleAccepted(fenced.Log())
	fLost := chaos.LostAdds(fAcked, fenced.Set())
	cLost := chaos.LostAdds(cAcked, control.Set())
	cOverlaps := chaos.Overlaps(control.Log())
	verdict := porcupine.CheckOperationsTimeout(chaos.MutexModel.ToModel(), rec.Operations(), time.Minute)
	chaos.Report(t, scenario, "duration", d, "acquisitions", acquired, "ownersReplayed", len(owners), "failedAcquires", failed, "pauses", pauses, "pausesWhereAnotherTookOver", bit,
		"leaderKills", kills, "holdsLost", lost, "acquiredWithoutKey", len(noKey),
		"fencedStaleRejected", stale, "fencedStaleAccepted", len(staleAccepted),
		"fencedAcked", len(fAcked), "fencedLost", len(fLost),
		"controlAcked", len(cAcked), "controlLost", len(cLost), "controlOverlaps", len(cOverlaps), "controlPorcupine", verdict)

	// L2 makes about one acquisition a second; E1's leader kills every 5 s
	// (each one ends every leadership whose lease cannot be confirmed within
	// its 2 s TTL) halve that.
	minAcq := int(d.Seconds() / 2)
	if leaderKills {
		minAcq = int(d.Seconds() / 4)
	}
	chaos.RequireAtLeast(t, "acquisitions", acquired, minAcq)
	chaos.RequireBit(t, "holder paused past its TTL while another took over", bit)
	if len(staleAccepted) != 0 {
		t.Errorf("fenced store accepted %d stale operations: first %+v", len(staleAccepted), staleAccepted[0])
	}
	if len(fLost) != 0 {
		t.Errorf("fenced store lost %d acknowledged adds: %v", len(fLost), fLost)
	}
	if len(cLost) == 0 && verdict != porcupine.Illegal {
		t.Errorf("the unfenced control shows no violation (no lost add, porcupine %s): the pause did not bite", verdict)
	}
	if len(noKey) != 0 {
		t.Errorf("%d acquisitions returned nil with the key absent and Done open: %+v", len(noKey), noKey)
	}
	if kind == "election" {
		if observeErr != nil {
			t.Error(observeErr)
		}
		leaders := 0
		var prev election.LeaderInfo
		for _, li := range observed {
			if li.Key == "" {
				continue
			}
			leaders++
			if li.Token < prev.Token || (li.Token == prev.Token && li.Key != prev.Key) {
				t.Errorf("Observe went back: leader %s rev %d after %s rev %d", li.Key, li.Token, prev.Key, prev.Token)
			}
			prev = li
		}
		chaos.Report(t, scenario+" observe", "changes", len(observed), "leadersSeen", leaders)
		chaos.RequireAtLeast(t, "leaders observed", leaders, 2)
	}
}
