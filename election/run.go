package election

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/session"
	"github.com/coordkit/coordkit/internal/waitq"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lostCleanupTimeout bounds the cleanup after a leadership was lost: the
// lease is gone or about to go anyway, so Run does not wait long for an
// etcd that may be unreachable before it tries again.
const lostCleanupTimeout = time.Second

// Run makes this process one of the candidates for the election called
// name, and runs work whenever it leads: the singleton-worker pattern.
//
// Each term, Run creates its own session on cli (see [WithTTL]), campaigns
// with it, and once it leads calls work with a context and the term's
// [Election], whose [Election.Token] and [Election.Txn] fence work's
// writes. work's context is cancelled the moment the leadership is lost
// (lease expired or revoked, key deleted, the lease's local deadline
// passed with etcd unreachable, or Resign called on e), with a cause
// (context.Cause) that wraps [ErrLost], [ErrSessionExpired] or
// [ErrNotLeader]; it is also cancelled when ctx is. work must return
// promptly when its context is done: Run waits for it before it does
// anything else, so two terms' work never overlaps in this process.
//
// When work has returned, Run resigns and closes the term's session
// (revoking its lease), so the next candidate leads within a round trip
// rather than a TTL. Then:
//   - if the leadership had been lost, Run waits (see [WithBackoff]) and
//     campaigns again with a new session, whatever work returned;
//   - if work returned by itself while leading, Run returns its error
//     (nil for nil), wrapped; with [WithRecampaign] it campaigns again.
//
// A session that cannot be created, or a campaign that fails (its lease
// expired, etcd unreachable for longer than the TTL), is retried the same
// way, with backoff and jitter; one that etcd refuses for this user (its
// role does not cover name, or its credentials are rejected) is not: Run
// returns that error at once, and [ErrClosed] once cli is closed. When ctx is done Run stops campaigning,
// cancels work's context, waits for work, resigns, and returns an error
// that satisfies errors.Is(err, ctx.Err()). Run returns only after every
// goroutine it started, and every callback, has returned.
//
// It panics if cli or work is nil, or name is empty or "/".
func Run(ctx context.Context, cli *clientv3.Client, name string, work func(ctx context.Context, e *Election) error, opts ...Option) error {
	if cli == nil {
		panic("election: nil client")
	}
	if work == nil {
		panic("election: nil work")
	}
	r := &runner{cli: cli, name: name, prefix: waitq.Prefix("election", name), work: work, opts: buildOptions(opts)}
	if f := r.opts.onNewLeader; f != nil {
		octx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			observe(octx, cli, r.prefix, r.opts.observer, func(ctx context.Context, li LeaderInfo) bool {
				f(li)
				return ctx.Err() == nil
			})
		})
		defer wg.Wait()
		defer cancel()
	}
	return r.loop(ctx)
}

type runner struct {
	cli    *clientv3.Client
	name   string
	prefix string
	work   func(context.Context, *Election) error
	opts   options
}

func (r *runner) loop(ctx context.Context) error {
	// The pause between terms, as WithBackoff describes it.
	b := retry.Between(r.opts.initial, r.opts.max)
	for {
		led, again, err := r.term(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("election: run %q: %w", r.prefix, ctx.Err())
		}
		if led {
			b.Reset()
		}
		if errs.Refused(err) {
			// Campaigning again as the same user cannot succeed.
			return fmt.Errorf("election: run %q: %w", r.prefix, err)
		}
		if r.cli.Ctx().Err() != nil {
			// Nothing Run could do would reach etcd again.
			return fmt.Errorf("election: run %q: %w", r.prefix, errs.Closed)
		}
		if !again {
			switch {
			case !r.opts.recampaign && err != nil:
				return fmt.Errorf("election: run %q: work: %w", r.prefix, err)
			case !r.opts.recampaign:
				return nil
			case err == nil:
				continue
			}
		}
		if err := b.Pause(ctx); err != nil {
			return fmt.Errorf("election: run %q: %w", r.prefix, err)
		}
	}
}

// term runs one session: campaign, and work while leading. It reports
// whether it led, and whether Run should try again after a pause (retry)
// or work returned by itself while leading, with work's error.
func (r *runner) term(ctx context.Context) (led, retry bool, err error) {
	s, err := r.session(ctx)
	if err != nil {
		return false, true, err
	}
	// The session's state (lease tracker, janitor, stream keeper) is this
	// session's alone: closing it after the session joins its goroutines
	// before Run returns.
	st := session.Of(s)
	cleanup := waitq.CleanupTimeout
	defer func() {
		end(s, cleanup)
		st.Close()
	}()
	e := New(s, r.name, WithObserver(r.opts.observer))
	if err := e.Campaign(ctx, r.opts.value); err != nil {
		cleanup = lostCleanupTimeout
		return false, true, err
	}
	werr := r.lead(ctx, e)
	lostErr := e.Err()
	if lostErr != nil {
		cleanup = lostCleanupTimeout
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanup)
	e.Resign(rctx)
	cancel()
	if lostErr != nil {
		return true, true, lostErr
	}
	return true, false, werr
}

// lead runs work with a context cancelled when the leadership ends, and
// returns once work has returned.
func (r *runner) lead(ctx context.Context, e *Election) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(context.Canceled)
	done, stop := e.Done(), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-done:
			cancel(fmt.Errorf("election: leadership of %q ended: %w", r.prefix, e.Err()))
		case <-stop:
		}
	})
	defer wg.Wait()
	defer close(stop)
	return r.work(lctx, e)
}

// session grants a lease, bounded by ctx, and starts a session on it. The
// session itself lives on the client's context, not ctx, so that it can
// still resign and revoke its lease after ctx is done.
func (r *runner) session(ctx context.Context) (*concurrency.Session, error) {
	gctx, cancel := context.WithTimeout(ctx, max(time.Duration(r.opts.ttl)*time.Second, waitq.CleanupTimeout))
	resp, err := r.cli.Grant(gctx, int64(r.opts.ttl))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("election: run %q: grant lease: %w", r.prefix, err)
	}
	s, err := concurrency.NewSession(r.cli, concurrency.WithTTL(r.opts.ttl), concurrency.WithLease(resp.ID))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lostCleanupTimeout)
		r.cli.Revoke(rctx, resp.ID)
		cancel()
		return nil, fmt.Errorf("election: run %q: session: %w", r.prefix, err)
	}
	return s, nil
}

// end stops s's keep-alives and revokes its lease, waiting at most timeout
// for etcd; if that fails the lease expires by itself.
func end(s *concurrency.Session, timeout time.Duration) {
	s.Orphan()
	ctx, cancel := context.WithTimeout(s.Client().Ctx(), timeout)
	defer cancel()
	s.Client().Revoke(ctx, s.Lease())
}
