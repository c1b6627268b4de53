package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeLease is a server-side lease in fake time: renewed by keep-alives
// until the client is cut off, then left to expire.
type fakeLease struct {
	mu       sync.Mutex
	ttl      time.Duration
	expiry   time.Time
	cutAt    time.Time // after this, nothing reaches the server
	out, in  time.Duration
	answered int
}

func (l *fakeLease) keepAlive(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.cutAt) {
		l.expiry = now.Add(l.ttl)
	}
}

// probe models TimeToLive: the request takes l.out to arrive, the server
// reports whole seconds left (rounded down, as etcd does), and the answer
// takes l.in to come back. Requests sent after the cut never arrive.
func (l *fakeLease) probe(ctx context.Context) (time.Duration, bool, error) {
	sent := time.Now()
	l.mu.Lock()
	cut := !sent.Add(l.out).Before(l.cutAt)
	l.mu.Unlock()
	if cut {
		<-ctx.Done()
		return 0, false, ctx.Err()
	}
	time.Sleep(l.out)
	l.mu.Lock()
	rem := l.expiry.Sub(time.Now()).Truncate(time.Second)
	l.answered++
	l.mu.Unlock()
	time.Sleep(l.in)
	if rem <= 0 {
		return 0, true, nil
	}
	return rem, false, nil
}

// TestDeadlineNeverAfterServerExpiry checks, for a range of round-trip
// times and TTLs, that the tracker gives the lease up before the server
// could expire it, less the margin, and never while keep-alives flow.
func TestDeadlineNeverAfterServerExpiry(t *testing.T) {
	for _, ttl := range []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second} {
		for _, rtt := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond} {
			t.Run(fmt.Sprintf("ttl=%v/rtt=%v", ttl, rtt), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					start := time.Now()
					l := &fakeLease{ttl: ttl, expiry: start.Add(ttl), cutAt: start.Add(20 * time.Second), out: rtt / 2, in: rtt - rtt/2}
					stopKA := make(chan struct{})
					var wg sync.WaitGroup
					wg.Go(func() { // the session's keep-alive, every TTL/3
						tk := time.NewTicker(ttl / 3)
						defer tk.Stop()
						for {
							select {
							case <-stopKA:
								return
							case now := <-tk.C:
								l.keepAlive(now.Add(rtt / 2))
							}
						}
					})
					tr := Start(Config{Probe: l.probe})
					defer tr.Stop()

					select {
					case <-tr.Lost():
					case <-time.After(time.Minute):
						t.Fatal("never lost after the cut")
					}
					lostAt := time.Now()
					close(stopKA)
					wg.Wait()
					l.mu.Lock()
					expiry := l.expiry
					l.mu.Unlock()
					margin := DefaultMargin(ttl - time.Second)
					if lostAt.Before(l.cutAt) {
						t.Fatalf("lost at %v, before the cut at %v: a false alarm", lostAt.Sub(start), l.cutAt.Sub(start))
					}
					if lostAt.After(expiry.Add(-margin + time.Millisecond)) {
						t.Fatalf("lost at %v, server expiry at %v: later than expiry - margin (%v)", lostAt.Sub(start), expiry.Sub(start), margin)
					}
					if !errors.Is(tr.Err(), errs.Lost) {
						t.Fatalf("Err() = %v, want errs.Lost", tr.Err())
					}
				})
			})
		}
	}
}

func TestExpiredLeaseIsSessionExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := Start(Config{Probe: func(context.Context) (time.Duration, bool, error) { return 0, true, nil }})
		defer tr.Stop()
		<-tr.Lost()
		if !errors.Is(tr.Err(), errs.SessionExpired) {
			t.Fatalf("Err() = %v, want SessionExpired", tr.Err())
		}
	})
}

func TestSessionDoneEndsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		var exited bool
		tr := Start(Config{
			Probe:  func(context.Context) (time.Duration, bool, error) { return 10 * time.Second, false, nil },
			Done:   done,
			OnExit: func() { exited = true },
		})
		<-tr.Ready()
		close(done)
		<-tr.Lost()
		synctest.Wait()
		if !errors.Is(tr.Err(), errs.SessionExpired) || !exited {
			t.Fatalf("Err() = %v, exited = %v", tr.Err(), exited)
		}
		tr.Stop()
	})
}

func TestBindCancelsOnLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fail := make(chan struct{})
		tr := Start(Config{Probe: func(ctx context.Context) (time.Duration, bool, error) {
			select {
			case <-fail:
				return 0, true, nil
			default:
				return 10 * time.Second, false, nil
			}
		}})
		defer tr.Stop()
		<-tr.Ready()
		ctx, cancel := tr.Bind(context.Background())
		defer cancel()
		close(fail)
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), errs.SessionExpired) {
			t.Fatalf("Cause = %v", context.Cause(ctx))
		}
	})
}

// TestFailedProbesBackOff: while the server fails every probe at once (its
// apply loop behind), the tracker asks again less and less often instead of
// every MinInterval, still probes before the deadline, keeps the hold while
// the deadline has not passed, and renews it when the server answers again.
func TestFailedProbesBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var (
			mu     sync.Mutex // guards probes, failing
			probes int
		)
		failing := false
		tr := Start(Config{Probe: func(context.Context) (time.Duration, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			probes++
			if failing {
				return 0, false, errors.New("etcdserver: request timed out")
			}
			return 60 * time.Second, false, nil
		}})
		defer tr.Stop()
		<-tr.Ready()
		first := tr.Deadline()
		mu.Lock()
		failing, probes = true, 0
		mu.Unlock()

		// The next probe fails 15-20 s in (the slack is 59 s); 30 s on,
		// fixed 50 ms pauses would have sent a few hundred more.
		time.Sleep(30 * time.Second)
		mu.Lock()
		n := probes
		failing = false
		mu.Unlock()
		if n == 0 || n > 20 {
			t.Fatalf("%d probes in 30 s of failures, want 1 to 20", n)
		}
		select {
		case <-tr.Lost():
			t.Fatalf("lost at %v with the deadline at %v", time.Since(start), first.Sub(start))
		default:
		}
		// The failures' pauses are capped by a third of the slack, so the
		// server's answer renews the deadline before it passes.
		for tr.Deadline().Equal(first) {
			select {
			case <-tr.Lost():
				t.Fatalf("lost at %v: no probe renewed the deadline", time.Since(start))
			case <-time.After(time.Second):
			}
		}
		if tr.Err() != nil {
			t.Fatalf("Err() = %v after the server answered again", tr.Err())
		}
	})
}

// TestFailedProbesBeforeFirstAnswer: before the first answer the pauses
// between failed probes stay short (at most a second), so a hold is ready
// soon after the server answers.
func TestFailedProbesBeforeFirstAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex // guards probes
			probes int
		)
		tr := Start(Config{Probe: func(context.Context) (time.Duration, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			probes++
			if probes <= 40 {
				return 0, false, errors.New("etcdserver: request timed out")
			}
			return 60 * time.Second, false, nil
		}})
		defer tr.Stop()
		start := time.Now()
		<-tr.Ready()
		if d := time.Since(start); d > 40*1500*time.Millisecond {
			t.Fatalf("ready after %v for 40 failures: pauses beyond the first-answer cap", d)
		}
		if d := time.Since(start); d < 10*time.Second {
			t.Fatalf("ready after %v for 40 failures: not backing off", d)
		}
	})
}
