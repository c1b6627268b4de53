package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/waitq"
	obsv "github.com/coordkit/coordkit/observe"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Election is one candidate in a leader election on one name. It is safe
// for concurrent use. Two *Election on the same session and name are two
// separate candidates, and at most one of them leads. An Election must not
// be copied.
type Election struct {
	s      *concurrency.Session
	prefix string
	key    string // this handle's key; replaced after an abandoned join (under the turn)
	// campaign has room for one token: the goroutine that put it there is
	// campaigning through this handle. It is apart from h's turn, which a
	// leadership keeps for its whole life, because Campaign on a handle
	// that leads proclaims rather than waits.
	campaign chan struct{}

	h *waitq.Handle // the current and last leadership, and whose turn it is

	obs *obsv.Observer // nil for none
}

// New returns a candidate in the election called name, that leads through
// session s. The session is borrowed: the caller creates it, may share it
// among many primitives, and closes it, which ends every leadership held
// through it. New does no I/O. It panics if s is nil, name is empty or
// "/", or an option is given that configures only [Run]; no option
// configures New yet; it takes them so that its signature is the other
// constructors'.
func New(s *concurrency.Session, name string, opts ...Option) *Election {
	if s == nil {
		panic("election: nil session")
	}
	var o options
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.runOnly != "" {
		panic(fmt.Sprintf("election: New does not take %s, which configures Run", o.runOnly))
	}
	prefix := waitq.Prefix("election", name)
	return &Election{
		s:        s,
		prefix:   prefix,
		key:      waitq.Key(prefix, s),
		campaign: make(chan struct{}, 1),
		h:        waitq.NewHandle(),
		obs:      o.observer,
	}
}

// Campaign blocks until this candidate leads the election or ctx is done,
// riding out etcd's transient faults. Candidates lead in the order they
// started campaigning. The candidate's key holds value, which
// [Election.Leader] and [Election.Observe] report.
//
// The leadership lasts until [Election.Resign] or until it is lost
// ([Election.Done]). Campaign fails with ctx's error, or with
// [ErrSessionExpired] or [ErrLost] if the lease or the key went away while
// it waited, and leaves no key behind (see Cleanup in
// [github.com/coordkit/coordkit]).
//
// Campaign on a handle that already leads writes value as [Election.Proclaim]
// does and returns. Concurrent Campaign calls on one handle run one after
// the other.
func (e *Election) Campaign(ctx context.Context, value string) error {
	select {
	case e.campaign <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("election: campaign %q: %w", e.prefix, ctx.Err())
	}
	defer func() { <-e.campaign }()
	if leads, err := e.reproclaim(ctx, value); leads {
		return wrap("campaign", e.prefix, err)
	}
	// Without a current leadership, the turn can only be held by a Resign
	// that is deleting its key: this waits for it, not for another leader.
	if err := e.h.Enter(ctx, true); err != nil {
		return fmt.Errorf("election: campaign %q: %w", e.prefix, err)
	}
	if err := e.acquire(ctx, value, true); err != nil {
		e.h.Exit()
		return fmt.Errorf("election: campaign %q: %w", e.prefix, err)
	}
	return nil
}

// TryCampaign leads the election if nobody leads or waits in line, and
// otherwise returns [ErrLeaderExists] at once, without waiting: the
// non-blocking [Election.Campaign], as mutex's TryLock is Lock's. It
// also returns ErrLeaderExists while another goroutine campaigns or
// resigns through the same *Election. It is a round trip to etcd when the
// election is free (two or three when someone leads: it joins the line,
// sees a candidate ahead and leaves), so it takes a context. Like
// Campaign, it leaves no key behind.
//
// On a handle that already leads, TryCampaign writes value as
// [Election.Proclaim] does and returns.
func (e *Election) TryCampaign(ctx context.Context, value string) error {
	select {
	case e.campaign <- struct{}{}:
	default:
		return fmt.Errorf("election: trycampaign %q: %w", e.prefix, ErrLeaderExists)
	}
	defer func() { <-e.campaign }()
	if leads, err := e.reproclaim(ctx, value); leads {
		return wrap("trycampaign", e.prefix, err)
	}
	if err := e.h.Enter(ctx, false); err != nil {
		// A Resign through this handle is deleting its key.
		return fmt.Errorf("election: trycampaign %q: %w", e.prefix, ErrLeaderExists)
	}
	if err := e.acquire(ctx, value, false); err != nil {
		e.h.Exit()
		return fmt.Errorf("election: trycampaign %q: %w", e.prefix, err)
	}
	return nil
}

// reproclaim is a campaign on a handle that may lead (under the campaign
// token): if it still leads, it writes value and reports leads, with the
// write's error. A leadership that had ended without Resign is dropped
// (a concurrent Resign may have ended it already), so the caller starts
// over.
func (e *Election) reproclaim(ctx context.Context, value string) (leads bool, err error) {
	h := e.h.Current()
	if h == nil {
		return false, nil
	}
	err = e.proclaim(ctx, h, value)
	if err == nil || h.Err() == nil {
		return true, err
	}
	e.h.Drop(ctx, h, ErrNotLeader)
	e.key = waitq.Key(e.prefix, e.s) // the old one may be left to the janitor
	return false, nil
}

// acquire joins the line under the campaign token and the turn, and
// starts the leadership once this candidate is first.
func (e *Election) acquire(ctx context.Context, value string, wait bool) error {
	w := waitq.New(e.s, e.prefix, e.key)
	w.Observe(e.obs, obsv.KindElection, e.prefix)
	err := w.Acquire(ctx, value, waitq.First{Block: wait})
	e.key = w.NextKey()
	if errors.Is(err, waitq.ErrWouldWait) {
		return ErrLeaderExists
	}
	if err != nil {
		return err
	}
	e.h.Start(w)
	return nil
}

func wrap(op, prefix string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("election: %s %q: %w", op, prefix, err)
}

// Resign gives up the leadership by deleting the leader key, guarded by
// its create revision so that a late or repeated Resign can never delete a
// newer leadership's key; the next candidate in line leads at once. It
// returns [ErrNotLeader] if the handle does not lead, and an error wrapping
// [ErrLost] or [ErrSessionExpired] if the leadership had been lost. The
// leadership ends locally whatever happens; if the delete fails, Resign
// returns its error and the session deletes the key once etcd answers.
func (e *Election) Resign(ctx context.Context) error {
	var key string
	ok, lost, err := e.h.Release(ctx, ErrNotLeader, func(h *waitq.Hold) bool { key = h.Waiter().Key(); return true })
	switch {
	case !ok:
		return fmt.Errorf("election: resign %q: %w", e.prefix, ErrNotLeader)
	case lost != nil:
		return fmt.Errorf("election: resign %q: leadership had ended before resign: %w", e.prefix, lost)
	case err != nil:
		return fmt.Errorf("election: resign %q: key %s is deleted in the background once etcd answers: %w", e.prefix, key, err)
	}
	return nil
}

// Proclaim replaces the leader's value without another election, in a
// write that commits only while this handle's leader key still exists with
// its create revision. It returns [ErrNotLeader] if the handle does not
// lead; if the key turns out to be gone, the leadership ends and the error
// wraps both ErrNotLeader and the cause ([ErrLost] or [ErrSessionExpired]).
func (e *Election) Proclaim(ctx context.Context, value string) error {
	h := e.h.Current()
	if h == nil {
		return fmt.Errorf("election: proclaim %q: %w", e.prefix, ErrNotLeader)
	}
	return wrap("proclaim", e.prefix, e.proclaim(ctx, h, value))
}

func (e *Election) proclaim(ctx context.Context, h *waitq.Hold, value string) error {
	if err := h.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	put := clientv3.OpPut(h.Waiter().Key(), value, clientv3.WithLease(e.s.Lease()))
	resp, err := e.s.Client().Txn(ctx).If(h.Waiter().IsOwner()).Then(put).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		cause := errs.Lost
		if lerr := h.Waiter().Tracker().Err(); lerr != nil {
			cause = lerr
		}
		h.End(cause)
		return fmt.Errorf("%w: %w", ErrNotLeader, h.Err())
	}
	return nil
}

// Leader returns the election's current leader: the candidate whose key has
// the lowest create revision, whichever library or tool wrote it. If
// nobody campaigns it returns [ErrNoLeader], with a LeaderInfo whose only
// field set is AsOf, the revision read.
func (e *Election) Leader(ctx context.Context) (LeaderInfo, error) {
	resp, err := e.s.Client().Get(ctx, e.prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return LeaderInfo{}, fmt.Errorf("election: leader %q: %w", e.prefix, err)
	}
	if len(resp.Kvs) == 0 {
		return LeaderInfo{AsOf: resp.Header.Revision}, fmt.Errorf("election: leader %q: %w", e.prefix, ErrNoLeader)
	}
	return info(resp.Kvs[0], resp.Header.Revision), nil
}

// Done returns a channel that the Election closes when the current
// leadership ends, by Resign or by loss (see Holds in
// [github.com/coordkit/coordkit]). Without a current leadership it returns
// the last one's closed channel.
func (e *Election) Done() <-chan struct{} { return e.h.Done() }

// Context returns a context derived from parent that is cancelled when the
// current leadership ends, as [Election.Done] is closed, with why as its
// [context.Cause]: [ErrNotLeader] after Resign, [ErrLost] or
// [ErrSessionExpired] on loss. Give it to the work only a leader may do.
// Without a current leadership the context is cancelled already.
func (e *Election) Context(parent context.Context) context.Context {
	return e.h.Context(parent, ErrNotLeader)
}

// Err returns nil while the handle leads, [ErrNotLeader] before the first
// Campaign and after Resign, and [ErrLost] or [ErrSessionExpired] once a
// leadership has been lost (until Resign or the next Campaign). Like
// [Election.Done], it starts watching the leadership's key, so a delete by
// someone else shows in Err (and IsLeader) without Done.
func (e *Election) Err() error { return e.h.Err(ErrNotLeader) }

// IsLeader reports whether the handle leads, as far as it knows: Campaign
// succeeded and neither Resign nor a loss has been seen since (see
// [Election.Err] for how losses are seen). Acting on it is racy by nature;
// use [Election.Txn] or [Election.Token] to act safely.
func (e *Election) IsLeader() bool { return e.Err() == nil }

// Token returns the fencing token of the current leadership: its key's
// create revision, which strictly increases from one leader of the
// election to the next. It returns 0 when the handle does not lead.
func (e *Election) Token() int64 { return e.h.Token() }

// Key returns the current leadership's key, or "" when the handle does not
// lead.
func (e *Election) Key() string { return e.h.Key() }

// Name returns the election's key prefix: its name followed by "/", whatever the
// name ends with, as etcd's constructors make it.
func (e *Election) Name() string { return e.prefix }

// IsOwner returns a comparison that is true while the current leadership's
// key exists with its create revision: add it to your own transactions to
// make them fenced. When the handle does not lead, it is a comparison that
// is never true.
func (e *Election) IsOwner() clientv3.Cmp { return e.h.IsOwner(e.prefix) }

// Txn starts a transaction that commits its Then branch only while this
// handle still leads, plus any extra comparisons given. Its response's
// Succeeded is false if the leadership is gone (or a comparison failed).
// Finish it with Then, optionally Else, and Commit; do not call If again.
func (e *Election) Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn {
	return e.s.Client().Txn(ctx).If(append([]clientv3.Cmp{e.IsOwner()}, cmps...)...)
}
