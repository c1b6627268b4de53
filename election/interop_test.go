package election_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestInteropWithEtcdElection runs a coordkit candidate against an etcd
// concurrency.Election, which is also what "etcdctl elect NAME PROPOSAL"
// runs (etcdctl/ctlv3/command/elect_command.go: NewElection, Campaign; key
// NAME/<lease hex>). Both see one leader, whichever leads, both ways.
func TestInteropWithEtcdElection(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()
	ours := election.New(testutil.Session(t, cli, 10), pfx+"e")
	ts := testutil.Session(t, testutil.Client(t, srv), 10)
	theirs := concurrency.NewElection(ts, pfx+"e")

	// Theirs leads: ours waits, and reports theirs as the leader.
	require.NoError(t, theirs.Campaign(ctx, "theirs"))
	require.Equal(t, fmt.Sprintf("%se/%x", pfx, int64(ts.Lease())), theirs.Key(), "etcdctl elect's key layout")
	got := campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return ours.Campaign(ctx, "ours") })
	select {
	case err := <-got:
		t.Fatalf("our Campaign returned %v while etcd's leads", err)
	case <-time.After(200 * time.Millisecond):
	}
	li, err := ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, election.LeaderInfo{Key: theirs.Key(), Value: "theirs", Token: theirs.Rev(), ModRev: theirs.Rev(), Lease: ts.Lease(), AsOf: li.AsOf}, li)
	require.NoError(t, theirs.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))

	// Ours leads: etcd's Leader and Observe report it, and etcd's Campaign
	// waits until ours resigns.
	resp, err := theirs.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, ours.Key(), string(resp.Kvs[0].Key))
	require.Equal(t, "ours", string(resp.Kvs[0].Value))
	octx, cancel := context.WithCancel(ctx)
	obs := theirs.Observe(octx)
	select {
	case resp := <-obs:
		require.Equal(t, ours.Key(), string(resp.Kvs[0].Key), "etcd's Observe")
	case <-time.After(10 * time.Second):
		t.Fatal("etcd's Observe delivered nothing")
	}
	cancel()
	for range obs {
	}
	got = campaignAsync(t, cli, pfx, 2, func(ctx context.Context) error { return theirs.Campaign(ctx, "theirs") })
	select {
	case err := <-got:
		t.Fatalf("etcd's Campaign returned %v while ours leads", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, ours.Resign(ctx))
	require.NoError(t, result(t, got, 10*time.Second))
	li, err = ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, theirs.Key(), li.Key)
	require.NoError(t, theirs.Resign(ctx))
}

// TestInteropNameEndingInSlash: etcd's own examples write names such as
// "my-election/", and concurrency.NewElection (which "etcdctl elect NAME"
// calls) appends "/" whatever the name ends with. A coordkit Election on
// the same name string must use the same prefix, so that a leader of
// either kind keeps the other from leading.
func TestInteropNameEndingInSlash(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, suffix string }{
		{"one slash", "e/"},
		{"two slashes", "e//"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, cli)
			ctx := t.Context()
			name := pfx + tt.suffix
			ours := election.New(testutil.Session(t, cli, 10), name)
			theirs := concurrency.NewElection(testutil.Session(t, testutil.Client(t, srv), 10), name)
			require.Equal(t, name+"/", ours.Name(), "etcd's prefix for the same name")

			// Ours leads: etcd sees it as the leader, and its Campaign
			// does not win before its deadline.
			require.NoError(t, ours.Campaign(ctx, "ours"))
			resp, err := theirs.Leader(ctx)
			require.NoError(t, err, "etcd's Leader while ours leads")
			require.Equal(t, ours.Key(), string(resp.Kvs[0].Key))
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			require.ErrorIs(t, theirs.Campaign(cctx, "theirs"), context.DeadlineExceeded, "etcd's Campaign while ours leads")
			cancel()
			require.NoError(t, ours.Resign(ctx))

			// Theirs leads: ours sees it as the leader, and our Campaign
			// does not win before its deadline.
			require.NoError(t, theirs.Campaign(ctx, "theirs"))
			li, err := ours.Leader(ctx)
			require.NoError(t, err)
			require.Equal(t, theirs.Key(), li.Key)
			cctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
			require.ErrorIs(t, ours.Campaign(cctx, "ours"), context.DeadlineExceeded, "our Campaign while etcd's leads")
			cancel()
			require.NoError(t, theirs.Resign(ctx))
		})
	}
}
