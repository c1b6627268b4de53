//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/coordkit/coordkit/internal/chaos"
)

// TestL2HolderPause is L2, Jepsen's lock-set with a pause nemesis: four
// holder processes take one lock (TTL 2 s) and each adds an element to a
// set by read, sleep U(0, 2 s), write back, on an enforcing fence store
// (fenced) and on a recording one (unfenced control). Every ~6 s the
// process holding the lock (or a random one) is SIGSTOPped for
// U(TTL+1, TTL+3) s, long enough for its lease to expire and another to
// take over.
//
// Fenced: 0 stale writes accepted and 0 acknowledged adds lost. Control:
// at least one lost acknowledged add or a porcupine strict-mutex Illegal,
// which proves the pause bit: a lease lock alone did not keep the holders
// apart, and only the token kept the data right.
func TestL2HolderPause(t *testing.T) {
	const ttl, nHolders = 2, 4
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	fenced := chaos.NewFenceStore(t, chaos.Enforcing)
	control := chaos.NewFenceStore(t, chaos.Recording)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	name := "/chaos/l2/lock"

	hs := newHolders(rec)
	lines := make(chan chaos.Line, 1024)
	collected := make(chan struct{})
	go hs.collect(lines, collected)
	var procs []*chaos.Helper
	for i := range nHolders {
		env := holderEnv{Endpoints: c.Endpoints(), Name: name, TTL: ttl, HoldMax: 2 * time.Second,
			Fenced: fenced.URL(), Control: control.URL(), Seed: r.Uint64()}
		procs = append(procs, chaos.StartHelper(t, i, "holder", env.environ(), lines))
	}

	pauses, bit := 0, 0
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for sleepCtx(ctx, chaos.Uniform(r, 4*time.Second, 8*time.Second)) {
		target := hs.current()
		if target < 0 {
			target = r.IntN(nHolders)
		}
		p := procs[target]
		pause := chaos.Uniform(r, (ttl+1)*time.Second, (ttl+3)*time.Second)
		from := rec.Now()
		p.Stop()
		time.Sleep(pause)
		p.Cont()
		to := rec.Now()
		pauses++
		rec.Note(fmt.Sprintf("SIGSTOP holder %d for %v", target, pause.Round(time.Millisecond)), from, to)
		if hs.grantedDuring(target, from, to) > 0 {
			bit++
		}
	}
	for _, p := range procs {
		p.Terminate(15 * time.Second)
	}
	close(lines)
	<-collected

	hs.mu.Lock()
	acquired, lost, stale := hs.acquired, hs.lostHolds, hs.staleRejected
	fAcked, cAcked := hs.fencedAcked, hs.controlAcked
	hs.mu.Unlock()
	staleAccepted := chaos.StaleAccepted(fenced.Log())
	fLost := chaos.LostAdds(fAcked, fenced.Set())
	cLost := chaos.LostAdds(cAcked, control.Set())
	cOverlaps := chaos.Overlaps(control.Log())
	verdict := porcupine.CheckOperationsTimeout(chaos.MutexModel.ToModel(), rec.Operations(), time.Minute)
	chaos.Report(t, "L2", "duration", d, "acquisitions", acquired, "pauses", pauses, "pausesWhereAnotherTookOver", bit,
		"holdsLost", lost, "fencedStaleRejected", stale, "fencedStaleAccepted", len(staleAccepted),
		"fencedAcked", len(fAcked), "fencedLost", len(fLost),
		"controlAcked", len(cAcked), "controlLost", len(cLost), "controlOverlaps", len(cOverlaps), "controlPorcupine", verdict)

	chaos.RequireAtLeast(t, "acquisitions", acquired, int(d.Seconds()/2))
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
}
