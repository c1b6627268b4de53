package election_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// action is one leader action that etcd accepted: a fenced increment of a
// counter, made with a leadership's token, committed at rev.
type action struct {
	token, rev, value int64
}

// TestSingleLeaderUnderChurn runs five candidates that campaign, act as
// leader, and then resign, crash (lease revoked), have their key deleted by
// an operator, or give up a campaign half-way, over and over. Every leader
// action is a counter increment guarded by the leadership's key. The
// outcome is judged from what etcd accepted:
//   - ordered by commit revision, the tokens of accepted actions never go
//     back: no leader acted after its successor had;
//   - the counter equals the number of accepted actions: no lost update;
//   - every action attempted after its leadership was taken away (the
//     injected faults) was rejected, so the faults bit;
//   - the first action after each Campaign was accepted: Campaign never
//     reports a leadership it does not have;
//   - an independent Observe saw every leader that acted, in token order,
//     and ended on "nobody leads".
func TestSingleLeaderUnderChurn(t *testing.T) {
	t.Parallel()
	// A server of its own: a compaction by another test could make the
	// observer skip a state, and the test checks that it skips none.
	es := etcdtest.NewServer(t)
	cli := testutil.Client(t, es)
	pfx := testutil.Prefix(t, cli)
	counter := pfx + "counter"
	t.Cleanup(func() { cli.Delete(context.Background(), counter) })
	name := pfx + "e"
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	observer := election.New(testutil.Session(t, cli, 10), name)
	var (
		mu   sync.Mutex // guards seen
		seen []election.LeaderInfo
	)
	octx, ocancel := context.WithCancel(t.Context())
	defer ocancel()
	obs := observer.Observe(octx)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		for li := range obs {
			mu.Lock()
			seen = append(seen, li)
			mu.Unlock()
		}
	}()

	const candidates, terms = 5, 30
	tl := &tally{}
	var wg sync.WaitGroup
	errc := make(chan error, candidates)
	for c := range candidates {
		ccli := testutil.Client(t, es)
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		wg.Go(func() {
			if err := candidate(t.Context(), ccli, cli, name, counter, rng, terms, tl); err != nil {
				errc <- fmt.Errorf("candidate %d: %w", c, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	require.Empty(t, tl.phantoms, "Campaign returned nil but the first guarded action was rejected")
	require.GreaterOrEqual(t, len(tl.accepted), candidates*terms/2, "enough leader actions to judge")
	require.Positive(t, tl.injected, "faults were injected, and their actions rejected")
	accepted := tl.accepted
	slices.SortFunc(accepted, func(a, b action) int { return int(a.rev - b.rev) })
	tokens := map[int64]bool{}
	for i, a := range accepted {
		require.Equal(t, int64(i+1), a.value, "action %d: no lost or duplicated increment", i)
		if i > 0 {
			require.GreaterOrEqual(t, a.token, accepted[i-1].token, "action %d at rev %d: a leader acted after its successor", i, a.rev)
		}
		tokens[a.token] = true
	}
	resp, err := cli.Get(t.Context(), counter)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(accepted)), string(resp.Kvs[0].Value))
	t.Logf("%d accepted actions by %d leaderships; %d injected faults, all rejected", len(accepted), len(tokens), tl.injected)

	// Every candidate has gone: the observer must end on "nobody leads",
	// having seen every leadership that acted, in token order.
	final := resp.Header.Revision
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1].Key == "" && seen[len(seen)-1].AsOf >= final
	}, 10*time.Second, 10*time.Millisecond, "the observer ends on nobody leading")
	ocancel()
	<-obsDone
	var last int64
	for _, li := range seen {
		if li.Key == "" {
			continue
		}
		require.GreaterOrEqual(t, li.Token, last, "observed tokens never go back")
		last = li.Token
		delete(tokens, li.Token)
	}
	require.Empty(t, tokens, "every leadership that acted was observed")
}

// tally is what the candidates of TestSingleLeaderUnderChurn report.
type tally struct {
	mu       sync.Mutex // guards the fields below
	accepted []action
	injected int      // actions attempted after the leadership was taken away
	phantoms []string // keys of leaderships whose first action was rejected
}

func (tl *tally) accept(a action) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.accepted = append(tl.accepted, a)
}

func (tl *tally) phantom(key string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.phantoms = append(tl.phantoms, key)
}

func (tl *tally) fault() {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.injected++
}

// candidate campaigns terms times on name. Each term it makes a few fenced
// increments of counter, then ends the term one way or another. admin is
// an independent client, playing the operator or the server.
func candidate(ctx context.Context, cli, admin *clientv3.Client, name, counter string, rng *rand.Rand, terms int, tl *tally) error {
	var s *concurrency.Session
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	for range terms {
		if s == nil {
			var err error
			if s, err = concurrency.NewSession(cli, concurrency.WithTTL(10)); err != nil {
				return err
			}
		}
		e := election.New(s, name)
		cctx, cancel := context.WithCancel(ctx)
		if rng.IntN(5) == 0 {
			// Give up the campaign half-way, perhaps while waiting.
			cctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
		}
		err := e.Campaign(cctx, "v")
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("campaign: %w", err)
		}
		for i := range 1 + rng.IntN(3) {
			ok, err := increment(ctx, e, counter, tl)
			if err != nil {
				return err
			}
			if !ok && i == 0 {
				tl.phantom(e.Key())
			}
		}
		switch rng.IntN(10) {
		case 0, 1: // crash: the server revokes the lease
			if _, err := admin.Revoke(ctx, s.Lease()); err != nil {
				return err
			}
			s.Close()
			s = nil
		case 2, 3: // an operator deletes the leader's key
			if _, err := admin.Delete(ctx, e.Key()); err != nil {
				return err
			}
		default:
			if err := e.Resign(ctx); err != nil {
				return fmt.Errorf("resign: %w", err)
			}
			continue
		}
		// The leadership was taken away, perhaps before this candidate
		// noticed: its next action must be rejected.
		ok, err := increment(ctx, e, counter, tl)
		if err != nil {
			return err
		}
		if ok {
			return errors.New("an action after the leadership was taken away was accepted")
		}
		tl.fault()
		if err := e.Resign(ctx); !errors.Is(err, election.ErrLost) && !errors.Is(err, election.ErrSessionExpired) {
			return fmt.Errorf("resign after the leadership was taken away = %v, want a loss", err)
		}
	}
	return nil
}

// increment adds one to counter in a transaction fenced by e's leadership,
// and reports whether etcd accepted it.
func increment(ctx context.Context, e *election.Election, counter string, tl *tally) (bool, error) {
	tok := e.Token()
	resp, err := e.Txn(ctx).Then(clientv3.OpGet(counter)).Commit()
	if err != nil || !resp.Succeeded {
		return false, err
	}
	var v int64
	mod := int64(0)
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		v, _ = strconv.ParseInt(string(kvs[0].Value), 10, 64)
		mod = kvs[0].ModRevision
	}
	resp, err = e.Txn(ctx, clientv3.Compare(clientv3.ModRevision(counter), "=", mod)).
		Then(clientv3.OpPut(counter, strconv.FormatInt(v+1, 10))).Commit()
	if err != nil || !resp.Succeeded {
		return false, err
	}
	tl.accept(action{token: tok, rev: resp.Header.Revision, value: v + 1})
	return true, nil
}
