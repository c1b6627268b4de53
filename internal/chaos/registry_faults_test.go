//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// regTTL is the registrants' lease TTL in seconds in REG1.
const regTTL = 3

// TestREG1Registry is REG1: three registrant processes keep an instance
// each registered (TTL 3 s), each through its own proxies to the three
// members, and three Views follow the service, each on a client behind its
// own proxies. One fault at a time, in turn, until -duration has passed
// and each kind has run once: the etcd leader SIGKILLed and restarted after
// 1 s; a follower killed and restarted; a registrant SIGSTOPped for TTL+2 s
// (past its TTL); a registrant's client cut off for TTL+1.5 s; a View's
// client cut off for 5 s (past its probe, so it goes stale).
//
// After each fault every registrant is visible in every View again within
// TTL+2 s of the fault's end; a paused or cut-off registrant is gone from
// every View within TTL+1 s of the fault's start (the fault bit: its lease
// expired); no View ever loses an instance that was not under a fault
// (0 deletions seen on leader kill or member restart); no registration
// ends (0 lost), and each is deregistered cleanly at the end.
func TestREG1Registry(t *testing.T) {
	const registrants, watchers = 3, 3
	staleBound, backBound := (regTTL+1)*time.Second, (regTTL+2)*time.Second
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	r := chaos.Rand(t)
	service := "/chaos/reg1/svc"

	lines := make(chan chaos.Line, 64)
	collected := make(chan struct{})
	var (
		mu           sync.Mutex // guards ended, deregistered
		ended        []string
		deregistered int
	)
	go func() {
		defer close(collected)
		for l := range lines {
			mu.Lock()
			switch l.Fields[0] {
			case "ENDED":
				ended = append(ended, fmt.Sprintf("r%d: %s", l.Helper, strings.Join(l.Fields[1:], " ")))
			case "DEREGISTERED":
				deregistered++
			}
			mu.Unlock()
		}
	}()
	var (
		procs []*chaos.Helper
		rcuts []cutoff
		ids   []string
	)
	for i := range registrants {
		cut := newCutoff(t, c)
		rcuts = append(rcuts, cut)
		ids = append(ids, fmt.Sprintf("r%d", i))
		env := []string{"CHAOS_ENDPOINTS=" + strings.Join(cut.endpoints(), ","), "CHAOS_SERVICE=" + service, "CHAOS_TTL=" + strconv.Itoa(regTTL)}
		procs = append(procs, chaos.StartHelper(t, i, "registrant", env, lines))
	}
	var (
		wcuts []cutoff
		views []*viewLog
	)
	for range watchers {
		cut := newCutoff(t, c)
		wcuts = append(wcuts, cut)
		views = append(views, followView(registry.Watch(cut.client(t), service)))
	}
	defer func() {
		for _, v := range views {
			v.close(t)
		}
	}()
	visible := func(what string) {
		testutil.Within(t, waitBound, what, func() {
			for !allSee(views, ids) {
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	visible("every registrant visible at the start")

	type fault struct {
		kind     string
		instance string // the registrant under the fault, if any
		from, to time.Time
		stale    time.Duration // start of the fault to gone from every View; -1: never gone
		back     time.Duration // end of the fault to visible in every View again
	}
	var faults []fault
	kinds := []string{"leader-kill", "member-restart", "registrant-pause", "registrant-partition", "watcher-partition"}
	end := time.Now().Add(d)
	for i := 0; i < len(kinds) || time.Now().Before(end); i++ {
		f := fault{kind: kinds[i%len(kinds)], stale: -1}
		switch f.kind {
		case "leader-kill", "member-restart":
			hctx, cancel := context.WithTimeout(t.Context(), waitBound)
			l := c.Leader(hctx)
			cancel()
			if l < 0 {
				t.Fatal("no leader")
			}
			if f.kind == "member-restart" {
				l = (l + 1 + r.IntN(c.Size()-1)) % c.Size()
			}
			f.from = time.Now()
			c.Kill(l)
			time.Sleep(time.Second)
			if err := c.Restart(l); err != nil {
				t.Fatal(err)
			}
			f.to = time.Now()
			hctx, cancel = context.WithTimeout(t.Context(), waitBound)
			err := c.WaitHealthy(hctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		case "registrant-pause", "registrant-partition":
			k := r.IntN(registrants)
			f.instance = ids[k]
			down := regTTL*time.Second + 2*time.Second
			f.from = time.Now()
			if f.kind == "registrant-pause" {
				procs[k].Stop()
			} else {
				down = regTTL*time.Second + 1500*time.Millisecond
				rcuts[k].partition()
			}
			f.stale = goneFromAll(views, f.instance, f.from.Add(down))
			time.Sleep(time.Until(f.from.Add(down)))
			if f.kind == "registrant-pause" {
				procs[k].Cont()
			} else {
				rcuts[k].heal()
			}
			f.to = time.Now()
		case "watcher-partition":
			k := r.IntN(watchers)
			f.from = time.Now()
			wcuts[k].partition()
			time.Sleep(5 * time.Second)
			if !views[k].v.Stale() {
				t.Errorf("view %d cut off for 5 s is not stale", k)
			}
			wcuts[k].heal()
			f.to = time.Now()
		}
		visible("every registrant visible after " + f.kind)
		f.back = time.Since(f.to)
		faults = append(faults, f)
		if f.instance != "" {
			t.Logf("%s of %s: gone from every View %v after it began, every registrant back %v after it ended", f.kind, f.instance, f.stale, f.back)
		} else {
			t.Logf("%s: every registrant visible %v after it ended", f.kind, f.back)
		}
	}

	// Every disappearance must be of the instance under a fault, during it
	// or within backBound after it.
	var unexpected []string
	expiries, vanishes := 0, 0
	for _, f := range faults {
		if f.instance != "" && f.stale >= 0 {
			expiries++
		}
		if f.stale > staleBound || (f.instance != "" && f.stale < 0) {
			t.Errorf("%s of %s: served for %v after the fault began, want ≤ %v", f.kind, f.instance, f.stale, staleBound)
		}
		if f.back > backBound {
			t.Errorf("%s %s: every registrant visible again %v after the fault ended, want ≤ %v", f.kind, f.instance, f.back, backBound)
		}
	}
	for w, v := range views {
		vanishes += len(v.vanished())
		for _, g := range v.vanished() {
			ok := slices.ContainsFunc(faults, func(f fault) bool {
				return f.instance == g.id && !g.at.Before(f.from) && !g.at.After(f.to.Add(backBound))
			})
			if !ok {
				during := "no fault"
				for _, f := range faults {
					if !g.at.Before(f.from) && !g.at.After(f.to.Add(backBound)) {
						during = f.kind
					}
				}
				unexpected = append(unexpected, fmt.Sprintf("view %d lost %s at %s (%s)", w, g.id, g.at.Format("15:04:05.000"), during))
			}
		}
	}

	stopHelpers(t, procs, lines, collected)
	leftover := keysUnder(t, c.Client(), service+"/")
	var maxStale, maxBack time.Duration
	for _, f := range faults {
		maxStale, maxBack = max(maxStale, f.stale), max(maxBack, f.back)
	}
	chaos.Report(t, "REG1", "duration", d, "faults", len(faults), "expiries", expiries, "vanishes", vanishes, "maxServedAfterDeath", maxStale,
		"maxBackAfterFault", maxBack, "unexpectedDeletions", len(unexpected), "registrationsEnded", len(ended),
		"deregistered", deregistered, "leftoverKeys", len(leftover))
	chaos.RequireBit(t, "registrant paused or cut off past its TTL", expiries)
	// The recorder of disappearances must have seen each expiry in every
	// View, or its silence about deletions proves nothing.
	chaos.RequireAtLeast(t, "disappearances recorded", vanishes, expiries*watchers)
	for _, u := range unexpected {
		t.Errorf("deletion seen outside a registrant fault: %s", u)
	}
	if len(ended) > 0 {
		t.Errorf("registrations lost: %v", ended)
	}
	if deregistered != registrants || len(leftover) > 0 {
		t.Errorf("%d of %d registrants deregistered, keys left: %v", deregistered, registrants, leftover)
	}
}

// viewLog records when instances vanish from a View.
type viewLog struct {
	v    *registry.View
	done chan struct{}

	mu   sync.Mutex // guards gone
	gone []vanish
}

// vanish is an instance gone from a View's snapshot at a time.
type vanish struct {
	id string
	at time.Time
}

// followView records v's changes until v is closed.
func followView(v *registry.View) *viewLog {
	l := &viewLog{v: v, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		prev := map[string]bool{}
		for range v.Changes() {
			cur := map[string]bool{}
			for _, in := range v.Snapshot().Instances {
				cur[in.ID] = true
			}
			now := time.Now()
			l.mu.Lock()
			for id := range prev {
				if !cur[id] {
					l.gone = append(l.gone, vanish{id, now})
				}
			}
			l.mu.Unlock()
			prev = cur
		}
	}()
	return l
}

func (l *viewLog) vanished() []vanish {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.gone)
}

// close stops the View and waits, within waitBound, for its follower.
func (l *viewLog) close(t *testing.T) {
	l.v.Close()
	testutil.WaitClosed(t, l.done, waitBound, "a View's changes")
}

// has reports whether the View serves every id and is not stale.
func (l *viewLog) has(ids []string) bool {
	snap := l.v.Snapshot()
	if snap.Stale {
		return false
	}
	for _, id := range ids {
		if !slices.ContainsFunc(snap.Instances, func(in registry.Instance) bool { return in.ID == id }) {
			return false
		}
	}
	return true
}

func allSee(views []*viewLog, ids []string) bool {
	for _, v := range views {
		if !v.has(ids) {
			return false
		}
	}
	return true
}

// goneFromAll waits until no View serves id, polling every 10 ms until
// deadline, and returns how long after now that took, or -1 if it did not
// happen by then.
func goneFromAll(views []*viewLog, id string, deadline time.Time) time.Duration {
	t0 := time.Now()
	for time.Now().Before(deadline) {
		gone := true
		for _, v := range views {
			if slices.ContainsFunc(v.v.Snapshot().Instances, func(in registry.Instance) bool { return in.ID == id }) {
				gone = false
			}
		}
		if gone {
			return time.Since(t0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

// registrantMain is a registrant process: it registers instance r<id> of
// CHAOS_SERVICE with a TTL of CHAOS_TTL through CHAOS_ENDPOINTS and keeps
// it registered until SIGTERM, then deregisters it. It reports on stdout:
//
//	REGISTERED
//	ENDED <quoted error>   (the registration ended by itself: lost)
//	DEREGISTERED
func registrantMain() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	id, err := strconv.Atoi(os.Getenv("CHAOS_HELPER_ID"))
	if err != nil {
		return err
	}
	ttl, err := strconv.Atoi(os.Getenv("CHAOS_TTL"))
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv("CHAOS_ENDPOINTS"), ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	reg, err := registry.Register(rctx, cli, registry.Instance{Service: os.Getenv("CHAOS_SERVICE"), ID: fmt.Sprintf("r%d", id),
		Addr: fmt.Sprintf("127.0.0.1:%d", 10000+id)}, registry.WithTTL(ttl))
	cancel()
	if err != nil {
		return err
	}
	fmt.Println("REGISTERED")
	select {
	case <-reg.Done():
		fmt.Println("ENDED", strconv.Quote(errText(reg.Err())))
		return nil
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reg.Deregister(dctx); err != nil {
		return err
	}
	fmt.Println("DEREGISTERED")
	return nil
}
