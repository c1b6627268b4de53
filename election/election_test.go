package election_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// campaignAsync starts a Campaign and returns its result channel once the
// candidate's key is visible (n keys under pfx).
func campaignAsync(t *testing.T, cli *clientv3.Client, pfx string, n int, campaign func(context.Context) error) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() { got <- campaign(t.Context()) }()
	require.Eventually(t, func() bool { return len(testutil.Keys(t, cli, pfx)) == n }, 10*time.Second, 5*time.Millisecond)
	return got
}

// result waits for a Campaign's result, bounded.
func result(t *testing.T, got <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(d):
		t.Fatalf("no result after %v", d)
		return nil
	}
}

func TestCampaignResign(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	e := election.New(s, pfx+"e")
	ctx := t.Context()

	require.ErrorIs(t, e.Err(), election.ErrNotLeader)
	require.False(t, e.IsLeader())
	require.Zero(t, e.Token())
	testutil.WaitClosed(t, e.Done(), time.Second, "Done before the first Campaign")
	_, err := e.Leader(ctx)
	require.ErrorIs(t, err, election.ErrNoLeader)

	require.NoError(t, e.Campaign(ctx, "host-a"))
	require.True(t, e.IsLeader())
	require.Equal(t, pfx+"e/", e.Name())
	require.True(t, strings.HasPrefix(e.Key(), fmt.Sprintf("%se/%x_", pfx, int64(s.Lease()))), "key %s starts with the lease id in hex", e.Key())
	li, err := e.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, e.Key(), li.Key)
	require.Equal(t, "host-a", li.Value)
	require.Equal(t, e.Token(), li.Token, "Token is the key's create revision")
	require.Equal(t, s.Lease(), li.Lease)
	require.GreaterOrEqual(t, li.AsOf, li.Token)
	done := e.Done()

	require.NoError(t, e.Resign(ctx))
	testutil.WaitClosed(t, done, time.Second, "Done after Resign")
	require.ErrorIs(t, e.Err(), election.ErrNotLeader)
	require.Empty(t, testutil.Keys(t, cli, pfx))
	_, err = e.Leader(ctx)
	require.ErrorIs(t, err, election.ErrNoLeader)
	require.ErrorIs(t, e.Resign(ctx), election.ErrNotLeader, "second Resign")
}

// TestConcurrentResign: two Resigns of one leadership race; exactly one
// resigns, the other gets ErrNotLeader (not ErrLost: the leadership was
// not lost, it was given up by the first).
func TestConcurrentResign(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	e := election.New(testutil.Session(t, cli, 10), pfx+"e")
	for round := range 10 {
		require.NoError(t, e.Campaign(t.Context(), "v"))
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- e.Resign(t.Context()) }()
		}
		e1, e2 := <-errs, <-errs
		if e1 != nil {
			e1, e2 = e2, e1
		}
		if e1 != nil || !errors.Is(e2, election.ErrNotLeader) {
			t.Fatalf("round %d: Resign, Resign = %v, %v: want one nil and one ErrNotLeader", round, e1, e2)
		}
		require.ErrorIs(t, e.Err(), election.ErrNotLeader)
	}
	require.Empty(t, testutil.Keys(t, cli, pfx))
	// The handle campaigns and leads again.
	require.NoError(t, e.Campaign(t.Context(), "v"))
	require.NoError(t, e.Resign(t.Context()))
}

func TestProclaim(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	e := election.New(testutil.Session(t, cli, 10), pfx+"e")
	other := election.New(testutil.Session(t, cli, 10), pfx+"e")
	ctx := t.Context()

	require.ErrorIs(t, e.Proclaim(ctx, "x"), election.ErrNotLeader, "Proclaim before Campaign")
	require.NoError(t, e.Campaign(ctx, "v1"))
	tok := e.Token()
	require.NoError(t, e.Proclaim(ctx, "v2"))
	li, err := other.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "v2", li.Value)
	require.Equal(t, tok, li.Token, "Proclaim keeps the leadership and its token")
	require.Greater(t, li.ModRev, li.Token)

	// Campaign while leading is a Proclaim.
	require.NoError(t, e.Campaign(ctx, "v3"))
	require.Equal(t, tok, e.Token())
	li, err = other.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "v3", li.Value)

	// The key deleted behind the leader's back: Proclaim must not recreate
	// it, and reports the loss.
	_, err = cli.Delete(ctx, e.Key())
	require.NoError(t, err)
	err = e.Proclaim(ctx, "v4")
	require.ErrorIs(t, err, election.ErrNotLeader)
	require.ErrorIs(t, err, election.ErrLost)
	require.False(t, e.IsLeader())
	testutil.WaitClosed(t, e.Done(), time.Second, "Done after a failed Proclaim")
	require.Empty(t, testutil.Keys(t, cli, pfx), "a failed Proclaim writes nothing")

	// Campaign after the loss, without Resign: a new leadership.
	require.NoError(t, e.Campaign(ctx, "v5"))
	require.Greater(t, e.Token(), tok)
	require.NoError(t, e.Err())
	require.NoError(t, e.Resign(ctx))
}

func TestCampaignWaitsForLeader(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	a := election.New(testutil.Session(t, cli, 10), pfx+"e")
	b := election.New(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"e")
	ctx := t.Context()

	require.NoError(t, a.Campaign(ctx, "a"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })
	select {
	case err := <-got:
		t.Fatalf("b.Campaign returned %v while a leads", err)
	case <-time.After(200 * time.Millisecond):
	}
	li, err := b.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "a", li.Value)

	require.NoError(t, a.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	require.Greater(t, b.Token(), a.Token(), "b's token is above a's")
	li, err = a.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "b", li.Value)
	require.NoError(t, b.Resign(ctx))
}

func TestTwoCandidatesOnOneSession(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	a, b := election.New(s, pfx+"e"), election.New(s, pfx+"e")
	require.NoError(t, a.Campaign(t.Context(), "a"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })
	select {
	case err := <-got:
		t.Fatalf("b.Campaign returned %v while a leads on the same session", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, a.Resign(t.Context()))
	require.NoError(t, result(t, got, 10*time.Second))
	require.NoError(t, b.Resign(t.Context()))
}

func TestCancelledCampaignLeavesNoKey(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	leader := election.New(testutil.Session(t, cli, 10), pfx+"e")
	cand := election.New(testutil.Session(t, cli, 10), pfx+"e")
	require.NoError(t, leader.Campaign(t.Context(), "l"))

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, cand.Campaign(ctx, "c"), context.DeadlineExceeded)
	require.Equal(t, []string{leader.Key()}, testutil.Keys(t, cli, pfx))
	require.ErrorIs(t, cand.Campaign(ctx, "c"), context.DeadlineExceeded, "already cancelled")
	require.NoError(t, leader.Resign(t.Context()))
	require.NoError(t, cand.Campaign(t.Context(), "c"), "the handle is usable again")
	require.NoError(t, cand.Resign(t.Context()))
}

// TestCampaignLeaseRevokedReturnsError is etcd#11051: a candidate whose
// lease goes away while it waits must get an error, not leadership, and
// must get it while the leader still leads, not when it resigns.
func TestCampaignLeaseRevokedReturnsError(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	leader := election.New(testutil.Session(t, cli, 10), pfx+"e")
	cs := testutil.Session(t, testutil.Client(t, srv), 2)
	cand := election.New(cs, pfx+"e")
	require.NoError(t, leader.Campaign(t.Context(), "l"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return cand.Campaign(ctx, "c") })
	_, err := cli.Revoke(t.Context(), cs.Lease())
	require.NoError(t, err)
	err = result(t, got, 15*time.Second)
	require.ErrorIs(t, err, election.ErrSessionExpired, "Campaign after the candidate's lease was revoked")
	require.False(t, cand.IsLeader())
	require.Equal(t, []string{leader.Key()}, testutil.Keys(t, cli, pfx), "the candidate's key is gone")
	require.NoError(t, leader.Err(), "the leader is unaffected")
	require.NoError(t, leader.Resign(t.Context()))
}

func TestCampaignKeyDeletedNeverWins(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	leader := election.New(testutil.Session(t, cli, 10), pfx+"e")
	cand := election.New(testutil.Session(t, cli, 10), pfx+"e")
	require.NoError(t, leader.Campaign(t.Context(), "l"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return cand.Campaign(ctx, "c") })
	_, err := cli.Delete(t.Context(), testutil.Keys(t, cli, pfx)[1])
	require.NoError(t, err)
	require.NoError(t, leader.Resign(t.Context()))
	require.ErrorIs(t, result(t, got, 10*time.Second), election.ErrLost)
	require.Empty(t, testutil.Keys(t, cli, pfx))
}

func TestBadInput(t *testing.T) {
	cli := testutil.Client(t, srv)
	s := testutil.Session(t, cli, 10)
	require.PanicsWithValue(t, "election: empty name", func() { election.New(s, "") })
	require.Panics(t, func() { election.New(s, "/") })
	require.Panics(t, func() { election.New(nil, "x") })
	require.Panics(t, func() { election.WithTTL(time.Millisecond) })
	work := func(context.Context, *election.Election) error { return nil }
	require.Panics(t, func() { election.Run(t.Context(), nil, "x", work) })
	require.Panics(t, func() { election.Run(t.Context(), cli, "x", nil) })
	require.Panics(t, func() { election.Run(t.Context(), cli, "", work) })
}

// TestNewRefusesRunOptions: New takes the package's Option type, and
// panics on an option that only Run uses rather than ignore it.
func TestNewRefusesRunOptions(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	require.NotNil(t, election.New(s, pfx+"e"))
	tests := []struct {
		name string
		opt  election.Option
	}{
		{"WithValue", election.WithValue("v")},
		{"WithTTL", election.WithTTL(5 * time.Second)},
		{"WithRecampaign", election.WithRecampaign()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.PanicsWithValue(t, "election: New does not take "+tt.name+", which configures Run",
				func() { election.New(s, pfx+"e", tt.opt) })
		})
	}
}
