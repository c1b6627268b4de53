package barrier_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// participants returns the number of participant keys under name.
func participants(t *testing.T, cli *clientv3.Client, name string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), name+"/waiters/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}

// TestDoubleBarrierRounds is RELIABILITY.md's B1 ordering check without
// faults: 5 participants go through 10 rounds; nobody leaves Enter before
// all 5 have arrived in that round, and nobody leaves Leave before all 5
// have started leaving.
func TestDoubleBarrierRounds(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const n, rounds = 5, 10
	var (
		arrived, leaving [rounds]atomic.Int32
		wg               sync.WaitGroup
	)
	for i := range n {
		c := cli
		if i%2 == 0 {
			c = testutil.Client(t, srv)
		}
		d := barrier.NewDouble(testutil.Session(t, c, 10), pfx+"d", n)
		wg.Go(func() {
			for r := range rounds {
				arrived[r].Add(1)
				if err := d.Enter(t.Context()); err != nil {
					t.Error(err)
					return
				}
				if got := arrived[r].Load(); got != n {
					t.Errorf("round %d: participant %d passed Enter with %d arrived", r, i, got)
				}
				leaving[r].Add(1)
				if err := d.Leave(t.Context()); err != nil {
					t.Error(err)
					return
				}
				if got := leaving[r].Load(); got != n {
					t.Errorf("round %d: participant %d passed Leave with %d leaving", r, i, got)
				}
			}
		})
	}
	wg.Wait()
}

// TestDoubleBarrierMissingParticipant: a participant never arrives; the
// others' Enter ends with their contexts and leaves no key behind.
func TestDoubleBarrierMissingParticipant(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	errc := make(chan error, 2)
	for range 2 {
		d := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3)
		go func() { errc <- d.Enter(ctx) }()
	}
	for range 2 {
		select {
		case err := <-errc:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(10 * time.Second):
			t.Fatal("Enter did not end with its context")
		}
	}
	require.Zero(t, participants(t, cli, pfx+"d"), "a cancelled Enter leaves no key")
}

// TestDoubleBarrierCrashBeforeFull: a participant that crashes while
// waiting no longer counts: the round fills only when another takes its
// place.
func TestDoubleBarrierCrashBeforeFull(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	enter := func(d *barrier.DoubleBarrier) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- d.Enter(ctx) }()
		return errc
	}
	a := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3)
	cs := testutil.Session(t, testutil.Client(t, srv), 10)
	crash := barrier.NewDouble(cs, pfx+"d", 3)
	ae, ce := enter(a), enter(crash)
	eventually(t, func() bool { return participants(t, cli, pfx+"d") == 2 }, "two waiting")
	_, err := cli.Revoke(ctx, cs.Lease())
	require.NoError(t, err)
	select {
	case err := <-ce:
		require.True(t, errors.Is(err, barrier.ErrSessionExpired) || errors.Is(err, barrier.ErrLost), "crashed Enter = %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the crashed participant's Enter did not return")
	}
	b := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3)
	be := enter(b)
	eventually(t, func() bool { return participants(t, cli, pfx+"d") == 2 }, "two waiting again")
	noneWithin(t, ae, 300*time.Millisecond, "Enter with a crashed participant counted")
	d := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3)
	require.NoError(t, d.Enter(ctx))
	waitAll(t, ae, 1, 10*time.Second, "a's Enter")
	waitAll(t, be, 1, 10*time.Second, "b's Enter")
	leavec := make(chan error, 3)
	for _, p := range []*barrier.DoubleBarrier{a, b, d} {
		go func() { leavec <- p.Leave(ctx) }()
	}
	waitAll(t, leavec, 3, 10*time.Second, "Leave")
}

// TestDoubleBarrierCrashInside: a participant that crashes after it was
// let in does not hold the others up in Leave.
func TestDoubleBarrierCrashInside(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	cs := testutil.Session(t, testutil.Client(t, srv), 10)
	ds := []*barrier.DoubleBarrier{
		barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3),
		barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 3),
		barrier.NewDouble(cs, pfx+"d", 3),
	}
	errc := make(chan error, 3)
	for _, d := range ds {
		go func() { errc <- d.Enter(ctx) }()
	}
	waitAll(t, errc, 3, 10*time.Second, "Enter")
	for _, d := range ds[:2] {
		go func() { errc <- d.Leave(ctx) }()
	}
	noneWithin(t, errc, 300*time.Millisecond, "Leave while a participant is still inside")
	_, err := cli.Revoke(ctx, cs.Lease())
	require.NoError(t, err)
	waitAll(t, errc, 2, 10*time.Second, "Leave after the third participant crashed")
	require.NoError(t, ds[2].Leave(ctx), "the crashed participant has left already")
	require.ErrorIs(t, ds[2].Leave(ctx), barrier.ErrNotEntered)
}

// TestDoubleBarrierExtraWaitsForNextRound: with count 2 and three
// arrivals, two pass and the third waits for the next round.
func TestDoubleBarrierExtraWaitsForNextRound(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	type result struct {
		d   *barrier.DoubleBarrier
		err error
	}
	res := make(chan result, 4)
	for range 3 {
		d := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 2)
		go func() { res <- result{d, d.Enter(ctx)} }()
	}
	var in []*barrier.DoubleBarrier
	for range 2 {
		select {
		case r := <-res:
			require.NoError(t, r.err)
			in = append(in, r.d)
		case <-time.After(10 * time.Second):
			t.Fatal("the first round did not fill")
		}
	}
	select {
	case r := <-res:
		t.Fatalf("a third participant passed a barrier for 2 (%v)", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	errc := make(chan error, 2)
	for _, d := range in {
		go func() { errc <- d.Leave(ctx) }()
	}
	waitAll(t, errc, 2, 10*time.Second, "first round's Leave")
	select {
	case r := <-res:
		t.Fatalf("the third participant passed alone (%v)", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	last := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 2)
	require.NoError(t, last.Enter(ctx))
	var third *barrier.DoubleBarrier
	select {
	case r := <-res:
		require.NoError(t, r.err)
		third = r.d
	case <-time.After(10 * time.Second):
		t.Fatal("the second round did not fill")
	}
	for _, d := range []*barrier.DoubleBarrier{third, last} {
		go func() { errc <- d.Leave(ctx) }()
	}
	waitAll(t, errc, 2, 10*time.Second, "second round's Leave")
}

func TestDoubleBarrierMisuse(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	d := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"d", 1, barrier.WithValue("me"))
	require.ErrorIs(t, d.Leave(ctx), barrier.ErrNotEntered)
	require.NoError(t, d.Enter(ctx), "a barrier for one opens at once")
	resp, err := cli.Get(ctx, d.Key())
	require.NoError(t, err)
	require.Equal(t, "me", string(resp.Kvs[0].Value))
	require.ErrorIs(t, d.Enter(ctx), barrier.ErrEntered)
	require.NoError(t, d.Leave(ctx))
	require.ErrorIs(t, d.Leave(ctx), barrier.ErrNotEntered)
	// The handle can go round again.
	require.NoError(t, d.Enter(ctx))
	require.NoError(t, d.Leave(ctx))
}

// enterAlone enters a double barrier for two on name, through a session of
// cli, as its only participant.
func enterAlone(ctx context.Context, cli *clientv3.Client, name string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		return err
	}
	defer s.Close()
	return barrier.NewDouble(s, name, 2).Enter(ctx)
}

// TestEnterEndsWhenClientCloses: Enter on a context that never ends
// returns an error once its client is closed, instead of blocking forever.
func TestEnterEndsWhenClientCloses(t *testing.T) {
	t.Parallel()
	testutil.RequireEndsOnClose(t, srv, enterAlone)
}

// TestEnterEndsWhenRefused: Enter returns an error once the user may no
// longer read its name, instead of trying for as long as ctx lasts. Which
// error depends on what meets the refusal first: the watch (permission
// denied) or the probe of the participant's lease ([errs.Lost]).
func TestEnterEndsWhenRefused(t *testing.T) {
	t.Parallel()
	err := testutil.EndsWhenRefused(t, enterAlone)
	if !errors.Is(err, rpctypes.ErrPermissionDenied) && !errors.Is(err, barrier.ErrLost) {
		t.Fatalf("Enter() = %v, want permission denied or %v", err, barrier.ErrLost)
	}
}
