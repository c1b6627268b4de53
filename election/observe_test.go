package election_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
)

// next receives the next LeaderInfo, bounded.
func next(t *testing.T, ch <-chan election.LeaderInfo) election.LeaderInfo {
	t.Helper()
	select {
	case li, ok := <-ch:
		require.True(t, ok, "Observe's channel closed early")
		return li
	case <-time.After(15 * time.Second):
		t.Fatal("Observe delivered nothing")
		return election.LeaderInfo{}
	}
}

// observe starts Observe on a handle of its own and stops it (draining the
// channel until it is closed) when the test ends.
func observe(t *testing.T, e *election.Election) <-chan election.LeaderInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ch := e.Observe(ctx)
	t.Cleanup(func() {
		cancel()
		for range ch {
		}
	})
	return ch
}

// TestObserveEveryChange drives an election through every kind of change
// without waiting for the observer, which must deliver each one, in order,
// ending with nobody leading.
func TestObserveEveryChange(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	a := election.New(testutil.Session(t, cli, 10), pfx+"e")
	b := election.New(testutil.Session(t, cli, 10), pfx+"e")
	ch := observe(t, election.New(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"e"))
	first := next(t, ch)
	require.Empty(t, first.Key, "nobody leads at first")

	require.NoError(t, a.Campaign(ctx, "a1"))
	require.NoError(t, a.Proclaim(ctx, "a2"))
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return b.Campaign(ctx, "b1") })
	require.NoError(t, a.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	require.NoError(t, b.Proclaim(ctx, "b2"))
	require.NoError(t, b.Resign(ctx))

	want := []struct{ key, value string }{{a.Name(), "a1"}, {a.Name(), "a2"}, {b.Name(), "b1"}, {b.Name(), "b2"}, {"", ""}}
	prev := first
	for i, w := range want {
		li := next(t, ch)
		require.Equal(t, w.value, li.Value, "change %d: %+v", i, li)
		if w.key == "" {
			require.Empty(t, li.Key, "change %d: nobody leads at the end", i)
		} else {
			require.Contains(t, li.Key, w.key)
			require.GreaterOrEqual(t, li.Token, prev.Token, "change %d: tokens never go back", i)
		}
		require.Greater(t, li.AsOf, prev.AsOf, "change %d: revisions increase", i)
		prev = li
	}
	select {
	case li := <-ch:
		t.Fatalf("a change that did not happen: %+v", li)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestObserveSlowReader makes many changes before reading any: none may be
// lost, and the last one read is the latest state.
func TestObserveSlowReader(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	e := election.New(testutil.Session(t, cli, 10), pfx+"e")
	ch := observe(t, election.New(testutil.Session(t, cli, 10), pfx+"e"))
	require.Empty(t, next(t, ch).Key)
	const n = 30
	require.NoError(t, e.Campaign(ctx, "v0"))
	for i := 1; i < n; i++ {
		require.NoError(t, e.Proclaim(ctx, fmt.Sprint("v", i)))
	}
	for i := range n {
		require.Equal(t, fmt.Sprint("v", i), next(t, ch).Value)
	}
	require.NoError(t, e.Resign(ctx))
	require.Empty(t, next(t, ch).Key)
}

// TestObserveSlowStartAcrossCompaction holds the observer's answers back, so
// that its watch starts before a campaign, a handover and a compaction, and
// its first read is answered after them. It must deliver states that only
// move forward, reach the latest leader, and carry on.
func TestObserveSlowStartAcrossCompaction(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	direct := testutil.Client(t, es)
	pcli := es.ProxyClient(t, 0)
	obs := election.New(testutil.Session(t, pcli, 10), "/obs/e")
	a := election.New(testutil.Session(t, direct, 10), "/obs/e")
	b := election.New(testutil.Session(t, direct, 10), "/obs/e")
	ctx := t.Context()

	es.Member(0).DelayResponses(time.Second, 0)
	ch := observe(t, obs)
	// Give the watch time to reach the server; its answer is held back.
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, a.Campaign(ctx, "a"))
	got := campaignAsync(t, direct, "/obs/", 2, func(ctx context.Context) error { return b.Campaign(ctx, "b") })
	require.NoError(t, a.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	_, err := es.Compact(ctx)
	require.NoError(t, err)

	var prev election.LeaderInfo
	for prev.Key != b.Key() {
		li := next(t, ch)
		require.Contains(t, []string{"", a.Key(), b.Key()}, li.Key, "only states that were")
		require.GreaterOrEqual(t, li.Token, prev.Token, "tokens never go back")
		require.Greater(t, li.AsOf, prev.AsOf, "revisions increase")
		prev = li
	}
	require.Equal(t, "b", prev.Value)
	es.Member(0).Undelay()
	require.NoError(t, b.Resign(ctx))
	require.Empty(t, next(t, ch).Key, "the observer carries on")
}

func TestObserveClosesOnCancel(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx, cancel := context.WithCancel(t.Context())
	ch := election.New(testutil.Session(t, cli, 10), pfx+"e").Observe(ctx)
	require.Empty(t, next(t, ch).Key)
	cancel()
	select {
	case _, ok := <-ch:
		require.False(t, ok, "nothing changed: the channel just closes")
	case <-time.After(10 * time.Second):
		t.Fatal("Observe's channel not closed after cancel")
	}
}
