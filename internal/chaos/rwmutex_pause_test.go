//go:build chaos

package chaos_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TestRW1RWMutex is RW1: six reader processes and two writer processes
// take one rwmutex (TTL 2 s) over a 3-process etcd cluster. Readers hold
// for U(0, 1 s); writers do the lock-set step (read the set, sleep U(0,
// 2 s), write it back with one more element) on an enforcing fence store
// with their token, and on a recording one (the unfenced control). Every
// 2–5 s after the last pause, a holder that has just entered its critical
// section (a writer if one does within 15 s) is SIGSTOPped for U(TTL+3, TTL+6) s, while the etcd
// leader is SIGKILLed and restarted every 5 s.
//
// Judged by replaying the lock's etcd history at every revision
// (C-ETCD-REPLAY): the keys the readers-writer rule lets hold are never a
// reader with a writer or two writers, writers hold in increasing token
// order, and every hold a process was granted (reader or writer) is one the
// rule let hold at some revision. The fenced store accepts 0 stale writes
// and loses 0 acknowledged adds. Guards: enough reader and writer
// acquisitions, and the pause bit (a paused writer's successor was granted
// while it was stopped).
func TestRW1RWMutex(t *testing.T) {
	const ttl, readers, writers = 2, 6, 2
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	fenced := chaos.NewFenceStore(t, chaos.Enforcing)
	control := chaos.NewFenceStore(t, chaos.Recording)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	name := "/chaos/rw1/lock"

	from := revision(t, c)
	hs := newHolders(rec)
	lines := make(chan chaos.Line, 1024)
	collected := make(chan struct{})
	go hs.collect(lines, collected)
	isWriter := func(id int) bool { return id >= readers }
	var procs []*chaos.Helper
	for i := range readers + writers {
		env := holderEnv{Kind: "rwmutex-read", Endpoints: c.Endpoints(), Name: name, TTL: ttl, HoldMax: time.Second, Seed: r.Uint64()}
		if isWriter(i) {
			env.Kind, env.HoldMax, env.Fenced, env.Control = "rwmutex-write", 2*time.Second, fenced.URL(), control.URL()
		}
		procs = append(procs, chaos.StartHelper(t, i, "holder", env.environ(), lines))
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var (
		wg    sync.WaitGroup
		kills int
	)
	wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })

	// freshHolder returns a helper that entered its critical section less
	// than 500 ms ago, a writer if want is set, or -1.
	freshHolder := func(want bool) int {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		for id, since := range hs.holding {
			if time.Since(since) < 500*time.Millisecond && (!want || isWriter(id)) {
				return id
			}
		}
		return -1
	}
	pauses, writerPauses, bit := 0, 0, 0
	for sleepCtx(ctx, chaos.Uniform(r, 2*time.Second, 5*time.Second)) {
		// Writers hold less often than readers: wait up to 15 s for one,
		// then up to 5 s for any holder.
		target := freshHolder(true)
		for i := 0; target < 0 && i < 600 && sleepCtx(ctx, 25*time.Millisecond); i++ {
			target = freshHolder(true)
		}
		for i := 0; target < 0 && i < 200 && sleepCtx(ctx, 25*time.Millisecond); i++ {
			target = freshHolder(false)
		}
		held := target >= 0
		if !held {
			target = r.IntN(len(procs))
		}
		// A new etcd leader extends every lease by its TTL plus an
		// election timeout: pause longer than that.
		pause := chaos.Uniform(r, (ttl+3)*time.Second, (ttl+6)*time.Second)
		from := rec.Now()
		procs[target].Stop()
		time.Sleep(pause)
		procs[target].Cont()
		to := rec.Now()
		pauses++
		rec.Note(fmt.Sprintf("SIGSTOP holder %d for %v", target, pause.Round(time.Millisecond)), from, to)
		n := hs.grantedDuring(target, from, to)
		if held && isWriter(target) {
			writerPauses++
			if n > 0 {
				bit++
			}
		}
		t.Logf("pause %d: holder %d (writer: %v, in its critical section: %v) stopped %v, %d grants to others meanwhile",
			pauses, target, isWriter(target), held, pause.Round(time.Millisecond), n)
	}
	testutil.Within(t, waitBound, "the scenario's goroutines", wg.Wait)
	stopHelpers(t, procs, lines, collected)

	_, to := settled(t, c)

	// Replay: at every revision, who does the rule let hold?
	pfx := name + "/"
	var (
		revs, mixed, foreign int
		allowedR             = map[int64]bool{}
		allowedW             = map[int64]bool{}
		writerOrder          []int64
	)
	revs = testutil.Replay(t, c.Client(), pfx, from, to, func(rev int64, keys map[string]*mvccpb.KeyValue) {
		rs, ws, other := rwHolders(pfx, keys)
		foreign += other
		if len(ws) > 1 || (len(ws) == 1 && len(rs) > 0) {
			mixed++
			t.Errorf("revision %d: the rule lets %d writers and %d readers hold", rev, len(ws), len(rs))
		}
		for _, tok := range rs {
			allowedR[tok] = true
		}
		for _, tok := range ws {
			allowedW[tok] = true
			if len(writerOrder) == 0 || writerOrder[len(writerOrder)-1] != tok {
				writerOrder = append(writerOrder, tok)
			}
		}
	})
	if err := chaos.TokensIncrease(writerOrder); err != nil {
		t.Errorf("writers: %v", err)
	}

	hs.mu.Lock()
	var ungranted []string
	readerAcq, writerAcq := 0, 0
	for _, g := range hs.grants {
		allowed := allowedR
		if isWriter(g.helper) {
			writerAcq++
			allowed = allowedW
		} else {
			readerAcq++
		}
		if !allowed[g.tok] {
			ungranted = append(ungranted, fmt.Sprintf("helper %d token %d", g.helper, g.tok))
		}
	}
	failed, lost, stale, noKey := hs.failed, hs.lostHolds, hs.staleRejected, len(hs.noKey)
	if len(hs.failures) > 0 {
		t.Logf("failed acquisitions by cause: %v", hs.failures)
	}
	fAcked, cAcked := hs.fencedAcked, hs.controlAcked
	hs.mu.Unlock()

	staleAccepted := chaos.StaleAccepted(fenced.Log())
	fLost := chaos.LostAdds(fAcked, fenced.Set())
	cLost := chaos.LostAdds(cAcked, control.Set())
	cOverlaps := chaos.Overlaps(control.Log())
	chaos.Report(t, "RW1", "duration", d, "readerAcquisitions", readerAcq, "writerAcquisitions", writerAcq,
		"failedAcquires", failed, "holdsLost", lost, "pauses", pauses, "writerPausesInCS", writerPauses,
		"writerPausesWhereAnotherTookOver", bit, "leaderKills", kills, "revisionsReplayed", revs,
		"revisionsWithReaderAndWriter", mixed, "foreignKeys", foreign, "writerHolds", len(writerOrder),
		"grantsTheRuleNeverAllowed", len(ungranted), "fencedStaleRejected", stale, "fencedStaleAccepted", len(staleAccepted),
		"fencedAcked", len(fAcked), "fencedLost", len(fLost), "controlAcked", len(cAcked), "controlLost", len(cLost),
		"controlOverlaps", len(cOverlaps), "acquiredWithoutKey", noKey)

	// A 30 s run makes about 35 reader and 7 writer acquisitions: the leader
	// kills end many holds and waits (TTL 2 s).
	chaos.RequireAtLeast(t, "reader acquisitions", readerAcq, int(d.Seconds()/2))
	chaos.RequireAtLeast(t, "writer acquisitions", writerAcq, int(d.Seconds()/10))
	chaos.RequireAtLeast(t, "revisions replayed", revs, int(d.Seconds()))
	chaos.RequireAtLeast(t, "leader kills", kills, 1)
	chaos.RequireBit(t, "writer paused past its TTL while another took over", bit)
	if len(ungranted) != 0 {
		t.Errorf("%d holds were granted that the rule never let hold in etcd's history: %v", len(ungranted), ungranted)
	}
	if len(staleAccepted) != 0 {
		t.Errorf("fenced store accepted %d stale operations: first %+v", len(staleAccepted), staleAccepted[0])
	}
	if len(fLost) != 0 {
		t.Errorf("fenced store lost %d acknowledged adds: %v", len(fLost), fLost)
	}
	if foreign != 0 {
		t.Errorf("%d keys under %s are neither a reader's nor a writer's", foreign, pfx)
	}
}

// rwHolders applies the readers-writer rule to the keys under pfx: in
// create-revision order, a writer holds if it is first, and a reader holds
// if no writer is ahead of it. It returns the create revisions (tokens) of
// the readers and writers that hold, and how many keys are of neither kind
// (they block everyone behind them, as a writer would).
func rwHolders(pfx string, keys map[string]*mvccpb.KeyValue) (readers, writers []int64, other int) {
	kvs := make([]*mvccpb.KeyValue, 0, len(keys))
	for _, kv := range keys {
		kvs = append(kvs, kv)
	}
	slices.SortFunc(kvs, func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) })
	for i, kv := range kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, pfx+"read/"):
			readers = append(readers, kv.CreateRevision)
		case strings.HasPrefix(k, pfx+"write/"):
			if i == 0 {
				writers = append(writers, kv.CreateRevision)
			}
			return readers, writers, other
		default:
			other++
			return readers, writers, other
		}
	}
	return readers, writers, other
}
