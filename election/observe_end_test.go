package election_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// observeAll observes the election on name through cli until Observe's
// channel closes.
func observeAll(ctx context.Context, cli *clientv3.Client, name string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		return err
	}
	defer s.Close()
	for range election.New(s, name).Observe(ctx) {
	}
	return nil
}

// TestObserveEndsWhenClientCloses: Observe's channel closes when its client
// is closed, whatever its context.
func TestObserveEndsWhenClientCloses(t *testing.T) {
	t.Parallel()
	testutil.EndsOnClose(t, srv, observeAll)
}

// TestObserveEndsWhenRefused: Observe's channel closes when etcd refuses
// its watch, instead of Observe trying again for as long as its context
// lasts.
func TestObserveEndsWhenRefused(t *testing.T) {
	t.Parallel()
	testutil.EndsWhenRefused(t, observeAll)
}

// TestObserveMissesNoLeader starts observers while the store keeps moving
// elsewhere (so that each one's read and its watch's start differ), and
// hands leadership on at once: every observer must deliver every leader, in
// order, each once.
func TestObserveMissesNoLeader(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx := t.Context()

	noise, stop := context.WithCancel(ctx)
	noised := make(chan struct{})
	go func() {
		defer close(noised)
		for noise.Err() == nil {
			// ctx, not noise: a Put cut short by noise could still be
			// applied after the cleanup's Delete.
			cli.Put(ctx, pfx+"noise", "x")
		}
	}()
	defer func() { stop(); <-noised; cli.Delete(ctx, pfx+"noise") }()

	const n = 5
	var es []*election.Election
	for range n {
		es = append(es, election.New(testutil.Session(t, cli, 10), pfx+"e"))
	}
	for round := range 3 {
		ch := observe(t, election.New(testutil.Session(t, testutil.Client(t, srv), 10), pfx+"e"))
		require.Empty(t, next(t, ch).Key, "round %d: nobody leads at first", round)
		for i, e := range es {
			require.NoError(t, e.Campaign(ctx, fmt.Sprint(i)))
			require.NoError(t, e.Resign(ctx))
		}
		var prev election.LeaderInfo
		for i := range es {
			li := next(t, ch)
			require.Equal(t, fmt.Sprint(i), li.Value, "round %d: leader %d", round, i)
			require.Greater(t, li.AsOf, prev.AsOf)
			require.Empty(t, next(t, ch).Key, "round %d: nobody leads after %d resigned", round, i)
			prev = li
		}
	}
}
