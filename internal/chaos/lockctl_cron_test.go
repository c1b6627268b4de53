//go:build chaos

package chaos_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
)

// childMain is the command a C1 lockctl runs: with the token lockctl hands
// it (LOCKCTL_TOKEN) it begins on the enforcing store, reads the set,
// works for U(3 s, 6 s) while sending a heartbeat to the recording store
// every 100 ms (so its lifetime can be seen), writes the set back with one
// more element, and prints "WROTE <tok> <x> <ok|stale|err>".
func childMain() error {
	tok, err := strconv.ParseInt(os.Getenv("LOCKCTL_TOKEN"), 10, 64)
	if err != nil {
		return fmt.Errorf("LOCKCTL_TOKEN: %w", err)
	}
	seed, _ := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64)
	r := rand.New(rand.NewPCG(seed, uint64(tok)))
	fenced := chaos.NewFenceClient(os.Getenv("CHAOS_FENCED"), int(tok))
	life := chaos.NewFenceClient(os.Getenv("CHAOS_CONTROL"), int(tok))
	defer fenced.Close()
	defer life.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	life.Begin(ctx, tok)
	fmt.Println("BEGIN", tok)
	set, err := fenced.Read(ctx, tok)
	status := "ok"
	work := time.After(chaos.Uniform(r, 3*time.Second, 6*time.Second))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-work:
			break loop
		case <-tick.C:
			life.Write(ctx, tok, []int{int(tok)})
		}
	}
	x := int(tok)
	if err == nil {
		err = fenced.Write(ctx, tok, append(slices.Clone(set), x))
	}
	switch {
	case errors.Is(err, chaos.ErrStale):
		status = "stale"
	case err != nil:
		status = "err"
	}
	fmt.Println("WROTE", tok, x, status)
	return nil
}

// lockctlRun is one "lockctl run" process of C1.
type lockctlRun struct {
	host   int
	cmd    *exec.Cmd
	tok    atomic64
	began  time.Time // when its command began; guarded by the test's mu
	code   int
	killed bool
	exited chan struct{}
}

type atomic64 struct {
	mu sync.Mutex
	v  int64
}

func (a *atomic64) set(v int64) { a.mu.Lock(); a.v = v; a.mu.Unlock() }
func (a *atomic64) get() int64  { a.mu.Lock(); defer a.mu.Unlock(); return a.v }

// TestC1LockctlCronOverlap is C1: two "hosts" each start
// "lockctl run --wait 0 --ttl 2 --kill-grace 1s" for the same job every
// second, as cron would. The command writes LOCKCTL_TOKEN-fenced updates to
// an enforcing store and works 3–6 s (the plan's 0–3 s rarely outlasts a
// 2 s lease, so a fault would seldom bite). Every ~7 s the lockctl whose
// command has just begun is SIGSTOPped for TTL + 2 s (its command keeps
// running: it is in its own process group), or, one time in three,
// SIGKILLed.
//
// Judged: 0 stale writes accepted and 0 acknowledged adds lost; after a
// paused lockctl resumes, it stops its command within kill-grace + 1 s;
// exit codes are 0, 75 (skipped) or 76 (lost) for every lockctl not
// killed; no key is left once the leases of killed lockctls have expired.
// The fault bites when a paused or killed lockctl's command acted after
// another host's command began (an overlap in the recording store's log).
func TestC1LockctlCronOverlap(t *testing.T) {
	const ttl, grace = 2, time.Second
	d := runDuration(t)
	bin := chaos.Binary(t, "github.com/coordkit/coordkit/cmd/lockctl", "lockctl")
	c := chaos.NewProcCluster(t, 3)
	fenced := chaos.NewFenceStore(t, chaos.Enforcing)
	life := chaos.NewFenceStore(t, chaos.Recording)
	r := chaos.Rand(t)
	seed := r.Uint64()
	job := "/chaos/c1/job"

	var (
		mu      sync.Mutex // guards runs, acked
		runs    []*lockctlRun
		acked   []int
		readers sync.WaitGroup
	)
	start := func(host int) {
		cmd := exec.Command(bin, "run", "--wait", "0", "--ttl", strconv.Itoa(ttl), "--kill-grace", grace.String(), job, "--", os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LOCKCTL_ENDPOINTS="+strings.Join(c.Endpoints(), ","),
			chaos.HelperEnv+"=child", "CHAOS_FENCED="+fenced.URL(), "CHAOS_CONTROL="+life.URL(),
			"CHAOS_SEED="+strconv.FormatUint(seed, 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Error(err)
			return
		}
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		run := &lockctlRun{host: host, cmd: cmd, exited: make(chan struct{})}
		mu.Lock()
		runs = append(runs, run)
		mu.Unlock()
		readers.Go(func() {
			defer close(run.exited)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 2 && f[0] == "BEGIN":
					tok, _ := strconv.ParseInt(f[1], 10, 64)
					run.tok.set(tok)
					mu.Lock()
					run.began = time.Now()
					mu.Unlock()
				case len(f) == 4 && f[0] == "WROTE" && f[3] == "ok":
					x, _ := strconv.Atoi(f[2])
					mu.Lock()
					acked = append(acked, x)
					mu.Unlock()
				}
			}
			cmd.Wait()
			run.code = cmd.ProcessState.ExitCode()
		})
	}
	// running returns a lockctl whose command began less than 300 ms ago
	// and that has not exited, or nil.
	running := func() *lockctlRun {
		mu.Lock()
		defer mu.Unlock()
		for _, run := range slices.Backward(runs) {
			select {
			case <-run.exited:
			default:
				if run.tok.get() != 0 && !run.killed && time.Since(run.began) < 300*time.Millisecond {
					return run
				}
			}
		}
		return nil
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var cronDone sync.WaitGroup
	cronDone.Go(func() {
		for sleepCtx(ctx, time.Second) {
			start(0)
			start(1)
		}
	})
	type pauseRec struct {
		tok    int64
		resume time.Duration // on the stores' clocks
		from   time.Duration
	}
	var pauses []pauseRec
	kills := 0
	for sleepCtx(ctx, chaos.Uniform(r, 4*time.Second, 10*time.Second)) {
		var run *lockctlRun
		for i := 0; run == nil && i < 200 && sleepCtx(ctx, 25*time.Millisecond); i++ {
			run = running()
		}
		if run == nil {
			continue
		}
		// The first fault is always a pause: only a pause makes the fault
		// bite (a killed lockctl's command is stopped with it), and a run
		// of kills alone proved nothing.
		if len(pauses) > 0 && r.IntN(3) == 0 {
			mu.Lock()
			run.killed = true
			mu.Unlock()
			run.cmd.Process.Signal(syscall.SIGKILL)
			kills++
			continue
		}
		from := life.Now()
		run.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep((ttl + 2) * time.Second)
		run.cmd.Process.Signal(syscall.SIGCONT)
		pauses = append(pauses, pauseRec{tok: run.tok.get(), from: from, resume: life.Now()})
	}
	testutil.Within(t, waitBound, "the cron runs", cronDone.Wait)
	testutil.Within(t, waitBound, "the lockctls' readers", readers.Wait)

	// Keys: lockctls that exited revoked their leases; killed ones' leases
	// expire within the TTL.
	var left []string
	for range 50 {
		if left = keysUnder(t, c.Client(), job); len(left) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	codes := map[int]int{}
	badCodes := 0
	for _, run := range runs {
		if run.killed {
			continue
		}
		codes[run.code]++
		if run.code != 0 && run.code != 75 && run.code != 76 {
			badCodes++
		}
	}
	lifeLog := life.Log()
	overlapping := map[int64]bool{}
	for _, ev := range chaos.Overlaps(lifeLog) {
		overlapping[ev.Tok] = true
	}
	bit, slowStops, orphaned := 0, 0, 0
	for _, run := range runs {
		if run.killed && overlapping[run.tok.get()] {
			orphaned++
		}
	}
	for _, p := range pauses {
		var last time.Duration
		for _, ev := range lifeLog {
			if ev.Tok == p.tok && ev.At > last {
				last = ev.At
			}
		}
		if overlapping[p.tok] {
			bit++
		}
		if last > p.resume+grace+time.Second {
			slowStops++
			t.Errorf("the command of the lockctl paused until %v still ran at %v", p.resume, last)
		}
	}
	staleAccepted := chaos.StaleAccepted(fenced.Log())
	lost := chaos.LostAdds(acked, fenced.Set())
	var stale int
	for _, ev := range fenced.Log() {
		if !ev.Accepted {
			stale++
		}
	}
	chaos.Report(t, "C1", "duration", d, "lockctlRuns", len(runs), "exitCodes", codes, "commandsAcked", len(acked),
		"pauses", len(pauses), "pausesThatOverlapped", bit, "lockctlKills", kills, "killedWhoseCommandOverlapped", orphaned,
		"staleRejected", stale, "staleAccepted", len(staleAccepted), "lostAdds", len(lost), "slowStops", slowStops, "keysLeft", len(left))
	chaos.RequireAtLeast(t, "commands that wrote", len(acked), int(d.Seconds()/10)) // about one every 6 s
	chaos.RequireBit(t, "a paused or killed lockctl's command acted after another began", len(overlapping))
	if len(staleAccepted) != 0 || len(lost) != 0 {
		t.Errorf("fenced store: %d stale writes accepted, %d acknowledged adds lost", len(staleAccepted), len(lost))
	}
	if badCodes != 0 {
		t.Errorf("%d lockctl runs exited with codes other than 0, 75, 76: %v", badCodes, codes)
	}
	if len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
}
