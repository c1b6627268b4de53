package stm

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/retry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Result describes how a call to [Run] went.
type Result struct {
	// Revision is the etcd revision of the commit. A transaction that
	// wrote nothing sends no commit under the snapshot levels and
	// ReadCommitted: Revision is then the revision its reads saw (0 if it
	// read nothing either).
	Revision int64
	// Attempts is the number of times the function ran.
	Attempts int
	// Conflicts is the number of attempts whose commit failed because
	// what they read or wrote had changed.
	Conflicts int
	// Errors is the number of transient RPC errors that were retried.
	Errors int
}

// Run runs fn as a transaction on the keys of cli's etcd: fn reads and
// writes through its [Tx], and Run commits the writes in one etcd Txn that
// succeeds only if what fn read is unchanged (see [Isolation] for exactly
// what is checked). If something changed, Run waits a little (see
// [WithBackoff]) and runs fn again on fresh data, until it commits, ctx is
// done, or [WithMaxAttempts] is reached. fn may therefore run several
// times, and should have no effects outside the Tx.
//
// Run blocks until the transaction commits, and then returns its [Result]
// and nil. Otherwise it commits nothing, unless it says it does not know,
// and returns:
//   - fn's own error, as is, if fn returns one;
//   - a [*PanicError] (errors.Is(err, [ErrPanic])) if fn panics;
//   - an error wrapping ctx.Err() when ctx is done;
//   - [ErrTooManyAttempts], wrapping the last failure;
//   - an error wrapping etcd's error for a failure that retrying cannot
//     fix, such as too many keys in one Txn (etcd's --max-txn-ops counts
//     the compares: one per key read, written or returned by a range);
//   - [ErrUncertain] when a commit was sent and its outcome is unknown.
//
// etcd's transient errors are retried, paced as in every coordkit call
// (see Faults in [github.com/coordkit/coordkit]): a read is simply retried; a
// commit whose fate is unknown is sent again as is, and never re-run
// through fn, so that a transaction commits at most once.
//
// Run panics if cli or fn is nil.
func Run(ctx context.Context, cli *clientv3.Client, fn func(tx Tx) error, opts ...Option) (Result, error) {
	if cli == nil {
		panic("stm: Run with a nil client")
	}
	if fn == nil {
		panic("stm: Run with a nil function")
	}
	o := buildOptions(opts)
	r := &runner{
		ctx: ctx, cli: cli, fn: fn, o: o,
		tx:           &tx{ctx: ctx, cli: cli, iso: o.iso, prefetch: o.prefetch, hints: keySpecs(o.prefetch)},
		conflictPace: retry.Between(o.initial, o.max),
		errorPace:    retry.New(),
	}
	res, err := r.run()
	o.stats.add(res, err == nil)
	return res, err
}

type runner struct {
	ctx context.Context
	cli *clientv3.Client
	fn  func(Tx) error
	o   options
	tx  *tx
	// conflictPace spaces attempts after conflicts, as [WithBackoff] says;
	// errorPace after etcd's transient errors, as every coordkit retry.
	conflictPace *retry.Pacer
	errorPace    *retry.Pacer
	res          Result
}

func (r *runner) run() (Result, error) {
	for {
		if err := r.ctx.Err(); err != nil {
			return r.res, fmt.Errorf("stm: after %d attempts: %w", r.res.Attempts, err)
		}
		r.res.Attempts++
		r.tx.begin()
		err := r.call()
		r.tx.end()
		var perr *PanicError
		if errors.As(err, &perr) {
			return r.res, err
		}
		if rerr := r.tx.readErr(); rerr != nil {
			// A read failed: the attempt is void, whatever fn said.
			r.tx.dropCache()
			if err := r.retryError(rerr); err != nil {
				return r.res, err
			}
			continue
		}
		if err != nil {
			return r.res, err
		}
		done, err := r.commit()
		if done || err != nil {
			return r.res, err
		}
	}
}

// call runs fn, turning a panic into a *PanicError.
func (r *runner) call() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return r.fn(r.tx)
}

// commit sends the attempt's commit. It reports done when the transaction
// committed, or an error when Run must give up; neither means try again.
func (r *runner) commit() (done bool, err error) {
	c := r.tx.commit()
	if c.readOnly {
		r.res.Revision = c.rev
		return true, nil
	}
	if err := r.ctx.Err(); err != nil {
		// Not sent: certainly not committed.
		return false, fmt.Errorf("stm: after %d attempts: %w", r.res.Attempts, err)
	}
	// Without a wait before the next attempt, what the failed commit
	// reads is fresh enough to start from; after one, it is stale.
	useElse := r.o.initial == 0
	resp, err := r.send(c, useElse)
	if err != nil {
		switch {
		case r.ctx.Err() != nil:
			return false, fmt.Errorf("%w: %w", ErrUncertain, r.ctx.Err())
		case !transient(err):
			return false, fmt.Errorf("stm: commit: %w", err)
		case !applied(err):
			r.tx.rereadNext(c)
			return false, r.retryError(err)
		case !c.guarded:
			// A write no compare covers (ReadCommitted, blind writes): sent
			// again, it could apply twice. Say so rather than guess.
			return false, fmt.Errorf("%w: %w", ErrUncertain, inner(err))
		}
		if resp, err = r.resend(c, err); err != nil {
			return false, err
		}
	}
	if resp.Succeeded {
		r.res.Revision = resp.Header.Revision
		return true, nil
	}
	r.res.Conflicts++
	if err := r.giveUp(ErrConflict); err != nil {
		return false, err
	}
	if useElse {
		r.tx.loadElse(c, resp)
	} else {
		r.tx.rereadNext(c)
	}
	return false, r.sleep(r.conflictPace, ErrConflict)
}

func (r *runner) send(c commit, withElse bool) (*clientv3.TxnResponse, error) {
	var ops []clientv3.Op
	if withElse {
		ops = make([]clientv3.Op, len(c.reads))
		for i, s := range c.reads {
			ops[i] = s.op()
		}
	}
	return r.cli.Txn(r.ctx).If(c.cmps...).Then(c.writes...).Else(ops...).Commit()
}

// resend sends a guarded commit whose first sending failed with first, an
// error after which it may or may not have taken effect, until etcd
// answers. Sending it again is safe because every written key is compared:
// if the first one took effect, this one's compares fail, and then Run
// cannot tell whether the first succeeded or another transaction
// interfered.
func (r *runner) resend(c commit, first error) (*clientv3.TxnResponse, error) {
	last := first
	for n := 1; ; n++ {
		r.res.Errors++
		if r.o.maxAttempts > 0 && n > r.o.maxAttempts {
			return nil, fmt.Errorf("%w: %w (%d resends): %w", ErrUncertain, inner(ErrTooManyAttempts), n-1, last)
		}
		if err := r.sleep(r.errorPace, last); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUncertain, inner(err))
		}
		resp, err := r.send(c, false)
		switch {
		case err == nil && resp.Succeeded:
			return resp, nil
		case err == nil:
			return nil, fmt.Errorf("%w: sent again after %w, it conflicted", ErrUncertain, inner(first))
		case r.ctx.Err() != nil:
			return nil, fmt.Errorf("%w: %w", ErrUncertain, r.ctx.Err())
		case !transient(err):
			return nil, fmt.Errorf("%w: sent again after %w: %w", ErrUncertain, inner(first), inner(err))
		}
		last = err
	}
}

// retryError waits before retrying after a transient error, or returns the
// error that ends Run.
func (r *runner) retryError(err error) error {
	if r.ctx.Err() != nil {
		return fmt.Errorf("stm: after %d attempts: %w", r.res.Attempts, r.ctx.Err())
	}
	if !transient(err) && !errors.Is(err, rpctypes.ErrCompacted) {
		return err
	}
	r.res.Errors++
	if err := r.giveUp(err); err != nil {
		return err
	}
	return r.sleep(r.errorPace, err)
}

func (r *runner) giveUp(cause error) error {
	if r.o.maxAttempts > 0 && r.res.Attempts >= r.o.maxAttempts {
		return fmt.Errorf("%w (%d): %w", ErrTooManyAttempts, r.res.Attempts, inner(cause))
	}
	return nil
}

// sleep waits for p's next pause, or returns an error wrapping ctx's
// and cause if ctx ends first.
func (r *runner) sleep(p *retry.Pacer, cause error) error {
	if err := p.Pause(r.ctx); err != nil {
		return fmt.Errorf("stm: after %d attempts: %w (last: %w)", r.res.Attempts, err, inner(cause))
	}
	return nil
}

func keySpecs(keys []string) []rangeSpec {
	specs := make([]rangeSpec, 0, len(keys))
	for _, k := range keys {
		s := rangeSpec{start: k}
		if !slices.Contains(specs, s) {
			specs = append(specs, s)
		}
	}
	return specs
}

// transient is the one classification of etcd's errors that every
// coordkit retry loop shares ([errs.Transient]).
func transient(err error) bool { return errs.Transient(err) }

// applied reports whether a request that failed with the transient error
// err may have taken effect. etcd rejects requests with these two before
// proposing them.
func applied(err error) bool {
	return !errors.Is(err, rpctypes.ErrNoLeader) && !errors.Is(err, rpctypes.ErrTooManyRequests)
}
