package election_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// term is what a Run's work reports when it starts and when it stops.
type term struct {
	who     int
	stopped bool
	token   int64
	key     string
	lease   clientv3.LeaseID
	cause   error // why work's context ended; nil at start
}

// runner runs election.Run in a goroutine that the test joins; its work
// reports the start and the stop of each term on one channel, so their
// order is the order in which they happened, and holds until its context
// ends.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, cli *clientv3.Client, name string, who int, events chan<- term, opts ...election.Option) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- election.Run(ctx, cli, name, func(ctx context.Context, e *election.Election) error {
			tm := term{who: who, token: e.Token(), key: e.Key()}
			li, err := e.Leader(ctx)
			if err == nil {
				tm.lease = li.Lease
			}
			events <- tm
			<-ctx.Done()
			tm.stopped, tm.cause = true, context.Cause(ctx)
			events <- tm
			return ctx.Err()
		}, opts...)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the Run and returns what it returned, bounded.
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for a second stop
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// expect receives the next event, which must be a start (or a stop) of
// who's work.
func expect(t *testing.T, ch <-chan term, stopped bool, who int, what string) term {
	t.Helper()
	select {
	case tm := <-ch:
		require.Equal(t, stopped, tm.stopped, "%s: got %+v", what, tm)
		require.Equal(t, who, tm.who, "%s: got %+v", what, tm)
		return tm
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing after 30s", what)
		return term{}
	}
}

// nextTerm receives the next event, bounded.
func nextTerm(t *testing.T, ch <-chan term) term {
	t.Helper()
	select {
	case tm := <-ch:
		return tm
	case <-time.After(30 * time.Second):
		t.Fatal("no event after 30s")
		return term{}
	}
}

// TestRunGracefulHandoff runs three supervisors and stops the leader of
// each term in turn: the next one takes over, and each work stops before
// the next starts.
func TestRunGracefulHandoff(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ev := make(chan term, 10)
	var rs []*runner
	for i := range 3 {
		rs = append(rs, startRun(t, testutil.Client(t, srv), pfx+"job", i, ev, election.WithTTL(5*time.Second)))
	}
	var last int64
	for range 3 {
		tm := nextTerm(t, ev)
		require.False(t, tm.stopped, "a start comes next: %+v", tm)
		require.Greater(t, tm.token, last, "tokens increase from term to term")
		last = tm.token
		require.ErrorIs(t, rs[tm.who].stop(t), context.Canceled, "Run after its context was cancelled")
		st := expect(t, ev, true, tm.who, "the leader's work stops before anything else happens")
		require.ErrorIs(t, st.cause, context.Canceled)
	}
	require.Empty(t, testutil.Keys(t, cli, pfx), "every supervisor resigned")
}

// TestRunRecampaignsAfterLoss takes the leadership away from a supervisor
// twice, by revoking its lease and by deleting its key. Each time its
// work's context is cancelled with the cause, and it leads again with a new
// session and a higher token.
func TestRunRecampaignsAfterLoss(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ev := make(chan term, 10)
	r := startRun(t, testutil.Client(t, srv), pfx+"job", 0, ev, election.WithTTL(2*time.Second))

	first := expect(t, ev, false, 0, "first term")
	_, err := cli.Revoke(t.Context(), first.lease)
	require.NoError(t, err)
	st := expect(t, ev, true, 0, "work stops after the lease was revoked")
	require.True(t, errors.Is(st.cause, election.ErrSessionExpired) || errors.Is(st.cause, election.ErrLost), "cause = %v", st.cause)

	second := expect(t, ev, false, 0, "second term")
	require.Greater(t, second.token, first.token)
	require.NotEqual(t, first.lease, second.lease, "a new session")
	_, err = cli.Delete(t.Context(), second.key)
	require.NoError(t, err)
	st = expect(t, ev, true, 0, "work stops after the key was deleted")
	require.ErrorIs(t, st.cause, election.ErrLost)

	third := expect(t, ev, false, 0, "third term")
	require.Greater(t, third.token, second.token)
	require.ErrorIs(t, r.stop(t), context.Canceled)
	expect(t, ev, true, 0, "work stops when Run is cancelled")
}

var errBoom = errors.New("boom")

func TestRunWorkReturns(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })

	// Work that finishes: Run resigns and returns nil. Its guarded write
	// commits while it leads.
	err := election.Run(ctx, cli, pfx+"job", func(ctx context.Context, e *election.Election) error {
		resp, err := e.Txn(ctx).Then(clientv3.OpPut(pfx+"data", fmt.Sprint(e.Token()))).Commit()
		if err == nil && !resp.Succeeded {
			err = errors.New("guarded write failed while leading")
		}
		return err
	})
	require.NoError(t, err)
	require.Empty(t, testutil.Keys(t, cli, pfx+"job/"))

	// Work that fails: Run returns its error.
	err = election.Run(ctx, cli, pfx+"job", func(context.Context, *election.Election) error { return errBoom })
	require.ErrorIs(t, err, errBoom)
	require.Empty(t, testutil.Keys(t, cli, pfx+"job/"))

	// WithRecampaign: an error and a nil return both lead to another term.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var calls int
	var tokens []int64
	err = election.Run(rctx, cli, pfx+"job", func(ctx context.Context, e *election.Election) error {
		calls++
		tokens = append(tokens, e.Token())
		switch calls {
		case 1:
			return errBoom
		case 2:
			return nil
		}
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}, election.WithRecampaign())
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 3, calls)
	require.IsIncreasing(t, tokens)
	require.Empty(t, testutil.Keys(t, cli, pfx+"job/"))
}

// TestRunOnNewLeader checks that the callback sees every leader in turn and
// is never called after Run has returned.
func TestRunOnNewLeader(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ev := make(chan term, 10)
	var (
		mu       sync.Mutex // guards seen
		seen     []election.LeaderInfo
		returned atomic.Bool
	)
	onNew := func(li election.LeaderInfo) {
		if returned.Load() {
			t.Error("OnNewLeader called after Run returned")
		}
		mu.Lock()
		seen = append(seen, li)
		mu.Unlock()
	}
	a := startRun(t, testutil.Client(t, srv), pfx+"job", 0, ev, election.WithValue("a"))
	ta := expect(t, ev, false, 0, "a leads")
	b := startRun(t, testutil.Client(t, srv), pfx+"job", 1, ev, election.WithValue("b"), election.WithOnNewLeader(onNew))
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == 2 }, 10*time.Second, 5*time.Millisecond)
	a.stop(t)
	expect(t, ev, true, 0, "a's work stops")
	tb := expect(t, ev, false, 1, "b leads")
	// Observe may deliver a change up to ~100 ms after it happened (its
	// watch starts at the revision it read), and Run promises no delivery
	// after it returns: let b's own leadership reach the callback first.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1].Key == tb.key
	}, 10*time.Second, 5*time.Millisecond, "b's callback sees b lead")
	require.ErrorIs(t, b.stop(t), context.Canceled)
	expect(t, ev, true, 1, "b's work stops")
	returned.Store(true)

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(seen), 2)
	require.Equal(t, election.LeaderInfo{Key: ta.key, Value: "a", Token: ta.token, ModRev: ta.token, Lease: ta.lease, AsOf: seen[0].AsOf}, seen[0])
	require.Equal(t, tb.key, seen[1].Key, "b is the next leader seen, with nobody leading in between")
	require.Equal(t, "b", seen[1].Value)
}

// TestRunCutOff cuts the leading supervisor off from etcd. Its work must
// stop before the other supervisor's work starts, and once the network
// heals it must campaign again, and lead when the other stops.
func TestRunCutOff(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	count := func() int64 {
		resp, err := es.Client().Get(t.Context(), "/cut/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return -1
		}
		return resp.Count
	}
	ev := make(chan term, 10)
	opts := []election.Option{election.WithTTL(2 * time.Second)}
	a := startRun(t, es.ProxyClient(t, 0), "/cut/job", 0, ev, opts...)
	ta := expect(t, ev, false, 0, "a leads")
	b := startRun(t, testutil.Client(t, es), "/cut/job", 1, ev, opts...)
	require.Eventually(t, func() bool { return count() == 2 }, 10*time.Second, 5*time.Millisecond)

	es.Member(0).Blackhole()
	st := expect(t, ev, true, 0, "a's work stops when cut off, before b's starts")
	require.ErrorIs(t, st.cause, election.ErrLost)
	tb := expect(t, ev, false, 1, "b leads")
	require.Greater(t, tb.token, ta.token)
	es.Member(0).Unblackhole()

	// a campaigns again once it can reach etcd, and leads when b stops.
	require.Eventually(t, func() bool { return count() == 2 }, 30*time.Second, 10*time.Millisecond,
		"a campaigns again after the partition heals")
	require.ErrorIs(t, b.stop(t), context.Canceled)
	expect(t, ev, true, 1, "b's work stops")
	expect(t, ev, false, 0, "a leads again")
	require.ErrorIs(t, a.stop(t), context.Canceled)
	expect(t, ev, true, 0, "a's work stops")
}
