package stm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Money moves between accounts in concurrent transactions from many
// clients. The full history of the accounts, replayed revision by revision
// from etcd's watch, must show the total never changing and no balance
// below zero, and every commit must move money between exactly two
// accounts.
func TestBankTransferInvariant(t *testing.T) {
	t.Parallel()
	const (
		accounts  = 5
		clients   = 8
		transfers = 2000 // in all; about 10 s under -race on two cores
		initial   = 100
		total     = accounts * initial
	)
	cli, p := setup(t)
	acct := func(i int) string { return fmt.Sprintf("%sacct/%d", p, i) }
	ops := make([]clientv3.Op, accounts)
	for i := range ops {
		ops[i] = clientv3.OpPut(acct(i), strconv.Itoa(initial))
	}
	start, err := cli.Txn(t.Context()).Then(ops...).Commit()
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var (
		stats   stm.Stats
		written atomic.Int64 // commits that moved money
		wg      sync.WaitGroup
		errs    = make(chan error, clients)
	)
	for w := range clients {
		c := testutil.Client(t, srv)
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		wg.Go(func() {
			for i := range transfers / clients {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				amount := 1 + rng.IntN(40)
				moved := false
				_, err := stm.Run(ctx, c, func(tx stm.Tx) error {
					moved = false
					v, err := tx.GetMany(acct(from), acct(to))
					if err != nil {
						return err
					}
					a, b := mustAtoi(v[0]), mustAtoi(v[1])
					n := min(amount, a)
					if n == 0 {
						return nil
					}
					tx.Put(acct(from), strconv.Itoa(a-n))
					tx.Put(acct(to), strconv.Itoa(b+n))
					moved = true
					return nil
				}, stm.WithStats(&stats))
				if err != nil {
					errs <- fmt.Errorf("client %d transfer %d: %w", w, i, err)
					return
				}
				if moved {
					written.Add(1)
				}
				if i%50 == 0 {
					// An audit reads all accounts with a range: one snapshot.
					_, err = stm.Run(ctx, c, func(tx stm.Tx) error {
						kvs, err := tx.Range(p+"acct/", clientv3.GetPrefixRangeEnd(p+"acct/"), 0)
						if err != nil {
							return err
						}
						sum := 0
						for _, kv := range kvs {
							sum += mustAtoi(kv.Value)
						}
						if sum != total || len(kvs) != accounts {
							return fmt.Errorf("audit saw %d accounts holding %d", len(kvs), sum)
						}
						return nil
					})
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d transfers, %d moved money, %.2f attempts per commit, %d conflicts",
		stats.Commits(), written.Load(), stats.AttemptsPerCommit(), stats.Conflicts())

	// Replay the history from the first revision after the setup.
	now, err := cli.Get(t.Context(), p+"acct/", clientv3.WithPrefix())
	require.NoError(t, err)
	last := start.Header.Revision
	for _, kv := range now.Kvs {
		last = max(last, kv.ModRevision)
	}
	balances := make(map[string]int, accounts)
	for i := range accounts {
		balances[acct(i)] = initial
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := cli.Watch(wctx, p+"acct/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	revs := 0
	for rev := start.Header.Revision; rev < last; {
		var resp clientv3.WatchResponse
		select {
		case r, ok := <-wch:
			require.True(t, ok, "watch closed at revision %d", rev)
			resp = r
		case <-time.After(30 * time.Second):
			t.Fatalf("no watch event after revision %d of %d", rev, last)
		}
		require.NoError(t, resp.Err())
		for i := 0; i < len(resp.Events); {
			// The events of one revision are one commit.
			r := resp.Events[i].Kv.ModRevision
			j := i
			for ; j < len(resp.Events) && resp.Events[j].Kv.ModRevision == r; j++ {
				ev := resp.Events[j]
				require.Equal(t, clientv3.EventTypePut, ev.Type)
				balances[string(ev.Kv.Key)] = mustAtoi(string(ev.Kv.Value))
			}
			require.Equal(t, 2, j-i, "revision %d changes %d accounts, want 2", r, j-i)
			sum := 0
			for k, b := range balances {
				require.GreaterOrEqual(t, b, 0, "revision %d: %s is negative", r, k)
				sum += b
			}
			require.Equal(t, total, sum, "revision %d: the total changed", r)
			revs++
			rev, i = r, j
		}
	}
	require.Equal(t, written.Load(), int64(revs), "one revision per commit that moved money")
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}
