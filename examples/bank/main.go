// Bank moves money between accounts with concurrent STM transactions and
// checks that no money is created or lost and no balance goes negative.
//
//	go run ./examples/bank [-endpoints URLS]
//
// Eight workers, each with its own client, make random transfers between
// five accounts. Each transfer reads two balances and writes two, in one
// transaction that retries (with backoff) when another worker got there
// first. At the end the total must be what it was, and the run prints how
// many attempts a commit took. It exits non-zero if the invariant broke.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/stm"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	prefix    = "/examples/bank/"
	accounts  = 5
	initial   = 100
	workers   = 8
	transfers = 50 // per worker
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

var errInsufficient = errors.New("insufficient funds")

func account(i int) string { return prefix + "acct" + strconv.Itoa(i) }

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "bank", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	cli, err := env.Client()
	if err != nil {
		return err
	}
	defer cli.Delete(context.WithoutCancel(ctx), prefix, clientv3.WithPrefix())
	for i := range accounts {
		if _, err := cli.Put(ctx, account(i), strconv.Itoa(initial)); err != nil {
			return err
		}
	}
	env.Say("%d accounts with %d each; %d workers make %d transfers each.", accounts, initial, workers, transfers)

	var (
		stats    stm.Stats
		wg       sync.WaitGroup
		mu       sync.Mutex // guards refused, failures
		refused  int
		failures []error
	)
	for w := range workers {
		wcli, err := env.Client()
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		wg.Go(func() {
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				amount := 1 + rng.IntN(30)
				_, err := stm.Run(ctx, wcli, func(tx stm.Tx) error {
					bal, err := tx.GetMany(account(from), account(to))
					if err != nil {
						return err
					}
					a, _ := strconv.Atoi(bal[0])
					b, _ := strconv.Atoi(bal[1])
					if a < amount {
						return errInsufficient // aborts: nothing is written
					}
					tx.Put(account(from), strconv.Itoa(a-amount))
					tx.Put(account(to), strconv.Itoa(b+amount))
					return nil
				}, stm.WithStats(&stats))
				mu.Lock()
				switch {
				case errors.Is(err, errInsufficient):
					refused++
				case err != nil:
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		return fmt.Errorf("%d transfers failed, first: %w", len(failures), failures[0])
	}

	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	total := 0
	for _, kv := range resp.Kvs {
		n, _ := strconv.Atoi(string(kv.Value))
		env.Say("  %s: %d", kv.Key[len(prefix):], n)
		if n < 0 {
			return fmt.Errorf("%s went negative: %d", kv.Key, n)
		}
		total += n
	}
	env.Say("total: %d (was %d); %d transfers refused for insufficient funds", total, accounts*initial, refused)
	env.Say("%.2f attempts per commit: conflicting transfers waited and retried instead of failing", stats.AttemptsPerCommit())
	if total != accounts*initial {
		return fmt.Errorf("money was created or lost: total %d, want %d", total, accounts*initial)
	}
	return nil
}
