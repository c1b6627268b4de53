//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSTM1Bank is STM1: eight clients make random transfers between five
// accounts of 100 through stm.Run, each also writing a marker key unique to
// the transfer, while the etcd leader is SIGKILLed every 5 s and, every
// ~7 s, one client is cut off from etcd (its own proxy) for 2–3 s. Judged
// by replaying every revision from etcd's history (C-ETCD-REPLAY): the sum
// is 500 and no balance is negative at every revision, and no marker is
// ever written twice (a commit re-sent after an unknown outcome applies at
// most once). Every transfer Run reported committed has its marker.
func TestSTM1Bank(t *testing.T) {
	const accounts, clients, initial = 5, 8, 100
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	pfx := "/chaos/stm1/"
	acct := func(i int) string { return fmt.Sprintf("%sacct/%d", pfx, i) }

	ctx0, cancel0 := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel0()
	ops := []clientv3.Op{}
	for i := range accounts {
		ops = append(ops, clientv3.OpPut(acct(i), strconv.Itoa(initial)))
	}
	seeded, err := c.Client().Txn(ctx0).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	startRev := seeded.Header.Revision

	var (
		committed, uncertain, failed atomic.Int64
		mu                           sync.Mutex
		okMarkers                    []string
		proxies                      []*chaos.Proxy
		wg                           sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for k := range clients {
		px := chaos.NewProxy(t, c.Endpoint(k%c.Size()))
		proxies = append(proxies, px)
		cli := px.Client(t)
		cr := rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				from, to := cr.IntN(accounts), cr.IntN(accounts-1)
				if to >= from {
					to++
				}
				amount := 1 + cr.IntN(20)
				marker := fmt.Sprintf("%smark/%d-%d", pfx, k, n)
				tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := stm.Run(tctx, cli, func(tx stm.Tx) error {
					vals, err := tx.GetMany(acct(from), acct(to))
					if err != nil {
						return err
					}
					a, _ := strconv.Atoi(vals[0])
					b, _ := strconv.Atoi(vals[1])
					if a < amount {
						amount = a
					}
					tx.Put(acct(from), strconv.Itoa(a-amount))
					tx.Put(acct(to), strconv.Itoa(b+amount))
					tx.Put(marker, "")
					return nil
				})
				tcancel()
				switch {
				case err == nil:
					committed.Add(1)
					mu.Lock()
					okMarkers = append(okMarkers, marker)
					mu.Unlock()
				case errors.Is(err, stm.ErrUncertain):
					uncertain.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	var kills, partitions int
	wg.Go(func() { kills = leaderNemesis(ctx, t, c, rec, false) })
	for sleepCtx(ctx, chaos.Uniform(r, 5*time.Second, 9*time.Second)) {
		px := proxies[r.IntN(len(proxies))]
		px.Partition()
		sleepCtx(ctx, chaos.Uniform(r, 2*time.Second, 3*time.Second))
		px.Heal()
		partitions++
	}
	testutil.Within(t, waitBound, "the clients", wg.Wait)

	hctx, end := settled(t, c)
	revs, badSum, negative, rewritten, markers, err := replayBank(hctx, c.Client(), pfx, startRev, end, accounts*initial)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, m := range okMarkers {
		if !markers[m] {
			missing = append(missing, m)
		}
	}
	chaos.Report(t, "STM1", "duration", d, "leaderKills", kills, "partitions", partitions, "committed", committed.Load(),
		"uncertain", uncertain.Load(), "failed", failed.Load(), "revisionsReplayed", revs, "badSum", badSum,
		"negative", negative, "markersRewritten", rewritten, "committedWithoutMarker", len(missing))
	chaos.RequireAtLeast(t, "committed transfers", int(committed.Load()), int(d.Seconds()))
	chaos.RequireAtLeast(t, "leader kills", kills, 1)
	if badSum != 0 || negative != 0 || rewritten != 0 || len(missing) != 0 {
		t.Errorf("bank invariant broken: %d revisions with sum ≠ 500, %d with a negative balance, %d markers written twice, %d committed transfers without their marker",
			badSum, negative, rewritten, len(missing))
	}
}

// replayBank replays the changes under pfx between revisions from
// (exclusive) and to from etcd's history, checking the accounts after
// every revision.
func replayBank(ctx context.Context, cli *clientv3.Client, pfx string, from, to int64, want int) (revs, badSum, negative, rewritten int, markers map[string]bool, err error) {
	resp, err := cli.Get(ctx, pfx+"acct/", clientv3.WithPrefix(), clientv3.WithRev(from))
	if err != nil {
		return
	}
	bal := map[string]int{}
	for _, kv := range resp.Kvs {
		bal[string(kv.Key)], _ = strconv.Atoi(string(kv.Value))
	}
	markers = map[string]bool{}
	check := func() {
		sum := 0
		for _, v := range bal {
			sum += v
			if v < 0 {
				negative++
			}
		}
		if sum != want {
			badSum++
		}
		revs++
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(from+1))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var cur int64
	for {
		select {
		case <-ctx.Done():
			return revs, badSum, negative, rewritten, markers, ctx.Err()
		case <-tick.C:
			cli.RequestProgress(wctx)
		case wr, ok := <-wch:
			if !ok {
				return revs, badSum, negative, rewritten, markers, errors.New("watch closed")
			}
			if err := wr.Err(); err != nil {
				return revs, badSum, negative, rewritten, markers, err
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision > to {
					if cur != 0 {
						check()
					}
					return revs, badSum, negative, rewritten, markers, nil
				}
				if cur != 0 && ev.Kv.ModRevision != cur {
					check()
				}
				cur = ev.Kv.ModRevision
				k := string(ev.Kv.Key)
				switch {
				case strings.HasPrefix(k, pfx+"mark/"):
					if ev.Type == mvccpb.PUT {
						if markers[k] || ev.Kv.Version > 1 {
							rewritten++
						}
						markers[k] = true
					}
				case ev.Type == mvccpb.PUT:
					bal[k], _ = strconv.Atoi(string(ev.Kv.Value))
				}
			}
			if wr.IsProgressNotify() && wr.Header.Revision >= to {
				if cur != 0 {
					check()
				}
				return revs, badSum, negative, rewritten, markers, nil
			}
		}
	}
}
