//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil/holds"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Tier 2: real etcd processes and holder processes, faults for a set time.
//
//	go test -tags chaos ./internal/chaos/ -run TestL2 -duration 60s
//	CHAOS_DURATION=1h go test -tags chaos -timeout 0 ./internal/chaos/   # soak

var durationFlag = flag.Duration("duration", 30*time.Second, "how long each tier-2 scenario injects faults (CHAOS_DURATION overrides)")

func init() { helperMain = runHelper }

// runDuration is how long a tier-2 scenario runs.
func runDuration(tb testing.TB) time.Duration {
	tb.Helper()
	if s := os.Getenv("CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			tb.Fatalf("CHAOS_DURATION=%q: %v", s, err)
		}
		return d
	}
	return *durationFlag
}

func runHelper() int {
	switch role := os.Getenv(chaos.HelperEnv); role {
	case "holder":
		if err := holderMain(); err != nil {
			fmt.Fprintln(os.Stderr, "holder:", err)
			return 1
		}
		return 0
	case "participant":
		if err := participantMain(); err != nil {
			fmt.Fprintln(os.Stderr, "participant:", err)
			return 1
		}
		return 0
	case "registrant":
		if err := registrantMain(); err != nil {
			fmt.Fprintln(os.Stderr, "registrant:", err)
			return 1
		}
		return 0
	case "child":
		if err := childMain(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
		return 2
	}
}

// holderEnv is the environment a holder process reads its job from.
type holderEnv struct {
	Kind      string // "mutex", "election", "rwmutex-read" or "rwmutex-write"
	Endpoints []string
	Name      string
	TTL       int
	HoldMax   time.Duration // each critical section sleeps U(0, HoldMax) between read and write
	Forever   bool          // hold the first acquisition until killed (L9)
	Fenced    string        // enforcing store URL, or ""
	Control   string        // unfenced (recording) store URL, or ""
	Seed      uint64
}

func (e holderEnv) environ() []string {
	kind := e.Kind
	if kind == "" {
		kind = "mutex"
	}
	return []string{
		"CHAOS_KIND=" + kind,
		"CHAOS_ENDPOINTS=" + strings.Join(e.Endpoints, ","),
		"CHAOS_NAME=" + e.Name,
		"CHAOS_TTL=" + strconv.Itoa(e.TTL),
		"CHAOS_HOLD_MAX=" + e.HoldMax.String(),
		"CHAOS_HOLD_FOREVER=" + strconv.FormatBool(e.Forever),
		"CHAOS_FENCED=" + e.Fenced,
		"CHAOS_CONTROL=" + e.Control,
		"CHAOS_SEED=" + strconv.FormatUint(e.Seed, 10),
	}
}

func readHolderEnv() (holderEnv, int, error) {
	var e holderEnv
	id, err1 := strconv.Atoi(os.Getenv("CHAOS_HELPER_ID"))
	ttl, err2 := strconv.Atoi(os.Getenv("CHAOS_TTL"))
	hold, err3 := time.ParseDuration(os.Getenv("CHAOS_HOLD_MAX"))
	forever, err4 := strconv.ParseBool(os.Getenv("CHAOS_HOLD_FOREVER"))
	seed, err5 := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return e, 0, err
		}
	}
	e = holderEnv{
		Kind:      os.Getenv("CHAOS_KIND"),
		Endpoints: strings.Split(os.Getenv("CHAOS_ENDPOINTS"), ","),
		Name:      os.Getenv("CHAOS_NAME"), TTL: ttl, HoldMax: hold, Forever: forever,
		Fenced: os.Getenv("CHAOS_FENCED"), Control: os.Getenv("CHAOS_CONTROL"), Seed: seed,
	}
	return e, id, nil
}

// holderMain is a holder process: it takes the lock (or leadership, for
// kind election), does the lock-set
// step (read the set, sleep, write it back with one more element) on the
// fenced and the unfenced store, unlocks, and repeats until SIGTERM. It
// reports on stdout, one line per event, times in Unix nanoseconds:
//
//	ACQUIRED <tok> <call> <ret>
//	NOKEY <tok> <call> <ret>   (Acquire returned nil, its key was absent and Done open)
//	FAILED <call> <ret> <quoted error>
//	WROTE <tok> <x> <fenced: ok|stale|err|-> <control: ok|err|->
//	RELEASING <tok>
//	UNLOCKED <tok> <call> <ret> <ok|lost|err>
//
// Like a process that believes it holds, it writes whether or not the hold
// is still valid: only the token protects the fenced store.
func holderMain() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	env, id, err := readHolderEnv()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: env.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	emit := func(fields ...any) { fmt.Fprintln(os.Stdout, fields...) }
	now := func() int64 { return time.Now().UnixNano() }
	r := rand.New(rand.NewPCG(env.Seed, uint64(id)))
	var fenced, control *chaos.FenceClient
	if env.Fenced != "" {
		fenced = chaos.NewFenceClient(env.Fenced, id)
		defer fenced.Close()
	}
	if env.Control != "" {
		control = chaos.NewFenceClient(env.Control, id)
		defer control.Close()
	}
	ss := newSessions(cli, concurrency.WithTTL(env.TTL))
	defer ss.close()
	for seq := 0; ctx.Err() == nil; seq++ {
		s, _, err := ss.next()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		m := holds.Mutex(mutex.New(s, env.Name, mutex.WithValue(fmt.Sprintf("holder %d", id))))
		switch env.Kind {
		case "election":
			m = holds.Election(election.New(s, env.Name), "chaos")
		case "rwmutex-read":
			m = holds.Reader(rwmutex.New(s, env.Name, rwmutex.WithValue(fmt.Sprintf("reader %d", id))))
		case "rwmutex-write":
			m = holds.Writer(rwmutex.New(s, env.Name, rwmutex.WithValue(fmt.Sprintf("writer %d", id))))
		}
		call := now()
		err = m.Acquire(ctx)
		if err != nil {
			emit("FAILED", call, now(), strconv.Quote(errText(err)))
			continue
		}
		tok := m.Token()
		ret := now()
		emit("ACQUIRED", tok, call, ret)
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, gerr := cli.Get(gctx, m.Key(), clientv3.WithCountOnly())
		cancel()
		select {
		case <-m.Done():
		default:
			if gerr == nil && resp.Count == 0 {
				emit("NOKEY", tok, call, ret)
			}
		}
		if env.Forever {
			<-ctx.Done()
			return nil
		}
		x := id*1_000_000 + seq
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fset, ferr := readSet(wctx, fenced, tok)
		cset, cerr := readSet(wctx, control, tok)
		time.Sleep(chaos.Uniform(r, 0, env.HoldMax))
		fstat := writeSet(wctx, fenced, tok, fset, ferr, x)
		cstat := writeSet(wctx, control, tok, cset, cerr, x)
		cancel()
		emit("WROTE", tok, x, fstat, cstat)
		emit("RELEASING", tok)
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		call = now()
		uerr := m.Release(uctx)
		cancel()
		status := "ok"
		switch {
		case uerr == nil:
		case errors.Is(uerr, mutex.ErrLost), errors.Is(uerr, mutex.ErrSessionExpired): // one value in every package
			status = "lost"
		default:
			status = "err"
		}
		emit("UNLOCKED", tok, call, now(), status)
	}
	return nil
}

// errText shortens an error to its innermost cause, for counting.
func errText(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func readSet(ctx context.Context, fc *chaos.FenceClient, tok int64) ([]int, error) {
	if fc == nil {
		return nil, nil
	}
	return fc.Read(ctx, tok)
}

func writeSet(ctx context.Context, fc *chaos.FenceClient, tok int64, set []int, readErr error, x int) string {
	switch {
	case fc == nil:
		return "-"
	case errors.Is(readErr, chaos.ErrStale):
		return "stale"
	case readErr != nil:
		return "err"
	}
	err := fc.Write(ctx, tok, append(slices.Clone(set), x))
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, chaos.ErrStale):
		return "stale"
	}
	return "err"
}

// sleepCtx sleeps for d or until ctx ends, and reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
