package lease

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/retry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Probe asks the server how long the lease has left. It returns
// expired=true when the server no longer knows the lease.
type Probe func(ctx context.Context) (remaining time.Duration, expired bool, err error)

// Config sets how a tracker judges its lease.
type Config struct {
	// Probe reaches the server.
	Probe Probe
	// Margin is subtracted from every deadline, for clock-rate drift and
	// scheduling delay. Zero means [DefaultMargin] of the first remaining TTL.
	Margin time.Duration
	// Done, when closed, ends the lease at once (the session was closed or
	// its keep-alive stopped).
	Done <-chan struct{}
	// MinInterval is the shortest pause between probes (default 50 ms), and
	// the first pause after a failed probe; later failures pause longer.
	MinInterval time.Duration
	// OnExit, if set, is called when the tracker's goroutine ends.
	OnExit func()
	// Go, if set, starts the tracker's goroutine, so that its owner can
	// await it (a WaitGroup's Go); nil means a plain go statement.
	Go func(func())
}

const (
	firstProbeTimeout = 5 * time.Second
	// firstProbeMaxPause caps the pause between failed probes before the
	// first answer, while nothing can be reported as held.
	firstProbeMaxPause = time.Second
)

// DefaultMargin is the safety margin for a lease of the given TTL: a tenth
// of it, at least 100 ms and at most 1 s.
func DefaultMargin(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 100*time.Millisecond), time.Second)
}

// Tracker follows one lease. Its methods are safe for concurrent use.
type Tracker struct {
	cfg    Config
	cancel context.CancelFunc
	exited chan struct{}
	lost   chan struct{}
	ready  chan struct{} // closed by the first successful probe
	// lostCtx is cancelled with the lost channel, for merging into the
	// contexts of calls that must stop when the lease is gone.
	lostCtx    context.Context
	cancelLost context.CancelFunc

	mu       sync.Mutex // guards deadline, err
	deadline time.Time  // zero until the first successful probe
	err      error
}

// Start starts a tracker whose goroutine runs until [Tracker.Stop] or until
// the lease is lost.
func Start(cfg Config) *Tracker {
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tracker{cfg: cfg, cancel: cancel, exited: make(chan struct{}), lost: make(chan struct{}), ready: make(chan struct{})}
	t.lostCtx, t.cancelLost = context.WithCancel(context.Background())
	if cfg.Go != nil {
		cfg.Go(func() { t.run(ctx) })
	} else {
		go t.run(ctx)
	}
	return t
}

// Ready is closed once a probe has succeeded and the deadline is known.
// Until then nothing can be said about the lease, so a hold must not be
// reported as taken before Ready.
func (t *Tracker) Ready() <-chan struct{} { return t.ready }

// Lost is closed when the lease is, or may be, gone on the server.
func (t *Tracker) Lost() <-chan struct{} { return t.lost }

// Err returns why the lease was lost ([errs.SessionExpired] or
// [errs.Lost]), or nil while it is held.
func (t *Tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Deadline returns the local deadline, zero before the first probe.
func (t *Tracker) Deadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadline
}

// Exited is closed when the tracker's goroutine has returned: the lease was
// lost or the tracker stopped, and nothing renews its deadline any more.
func (t *Tracker) Exited() <-chan struct{} { return t.exited }

// Stop ends the tracker's goroutine and waits for it.
func (t *Tracker) Stop() {
	t.cancel()
	<-t.exited
	t.cancelLost() // frees the context; Lost stays open unless it was lost
}

// Context returns a context that is cancelled when the lease is lost (or
// the tracker stopped).
func (t *Tracker) Context() context.Context { return t.lostCtx }

// Bind returns a context derived from ctx that is also cancelled when the
// lease is lost, and a function that releases it. A call made with it stops
// at once when the tracker gives up on the lease, even if the server never
// answers.
func (t *Tracker) Bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(t.lostCtx, func() {
		if err := t.Err(); err != nil {
			cancel(err)
		}
	})
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

func (t *Tracker) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
		close(t.lost)
		t.cancelLost()
	}
}

func (t *Tracker) run(ctx context.Context) {
	defer close(t.exited)
	if t.cfg.OnExit != nil {
		defer t.cfg.OnExit()
	}
	var expiry *time.Timer // fires at the deadline
	var expiryC <-chan time.Time
	defer func() {
		if expiry != nil {
			expiry.Stop()
		}
	}()
	margin := t.cfg.Margin
	// Failed probes are paced: a server too loaded to answer (its apply
	// loop behind) is not helped by every session of a burst asking again
	// 20 times a second. The pause grows from MinInterval and is capped by
	// the slack left, so probes still come before the deadline; the
	// deadline alone decides loss, however the probes are paced.
	failures := retry.Between(t.cfg.MinInterval, time.Hour)
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.cfg.Done:
			t.fail(errs.SessionExpired)
			return
		case <-expiryC:
			t.fail(errs.Lost)
			return
		case <-next.C:
		}
		sent := time.Now()
		// A probe never outlives the deadline it could renew; before the
		// first answer, it is bounded so that a lost request is re-sent.
		pctx, cancel := context.WithTimeout(ctx, firstProbeTimeout)
		if d := t.Deadline(); !d.IsZero() {
			cancel()
			pctx, cancel = context.WithDeadline(ctx, d)
		}
		remaining, expired, err := t.cfg.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if expired {
			t.fail(errs.SessionExpired)
			return
		}
		var wait time.Duration
		if err != nil {
			wait = failures.Next()
			if d := t.Deadline(); d.IsZero() {
				wait = min(wait, firstProbeMaxPause)
			} else {
				wait = min(wait, time.Until(d)/3)
			}
			wait = max(wait, t.cfg.MinInterval)
		} else {
			failures.Reset()
			if margin == 0 {
				margin = DefaultMargin(remaining)
			}
			d := sent.Add(remaining - margin)
			t.mu.Lock()
			if t.deadline.IsZero() {
				close(t.ready) // the first answer
			}
			if d.After(t.deadline) {
				t.deadline = d
			}
			d = t.deadline
			t.mu.Unlock()
			if expiry == nil {
				expiry = time.NewTimer(time.Until(d))
				expiryC = expiry.C
			} else {
				expiry.Reset(time.Until(d))
			}
			// Probe again when a quarter to a third of the slack is used, so
			// that a slow probe or two still renews the deadline before it
			// passes; the spread keeps the sessions of a burst, started
			// together, from probing together ever after.
			wait = t.cfg.MinInterval
			if slack := time.Until(d); slack > 0 {
				wait = max(wait, slack/4+rand.N(slack/12+1))
			}
		}
		next.Reset(wait)
	}
}

// ProbeSession returns a Probe that asks cli for lease id's remaining TTL.
func ProbeSession(cli *clientv3.Client, id clientv3.LeaseID) Probe {
	return func(ctx context.Context) (time.Duration, bool, error) {
		resp, err := cli.TimeToLive(ctx, id)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return 0, true, nil
		}
		if err != nil {
			return 0, false, err
		}
		if resp.TTL <= 0 {
			return 0, true, nil
		}
		return time.Duration(resp.TTL) * time.Second, false, nil
	}
}
