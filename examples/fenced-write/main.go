// Fenced-write shows why a lease-based lock alone is not mutual exclusion,
// and how coordkit's fencing token and guarded write close the gap.
//
// Worker A takes the lock, then "pauses" (a long GC pause, a frozen VM:
// here its session simply stops renewing the lease). The lease expires,
// worker B takes the lock and writes. Then A wakes up, still believing it
// holds the lock, and writes too. A plain write lets A clobber B's work; a
// store that checks fencing tokens, and a write guarded by the hold, both
// reject it.
//
//	go run ./examples/fenced-write [-endpoints URLS]
//
// It exits non-zero if any of that did not happen as described.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fenced-write:", err)
		os.Exit(1)
	}
}

// store is shared storage that remembers the highest token it has seen and
// can reject writes that carry a lower one.
type store struct {
	mu     sync.Mutex // guards value, maxTok
	value  string
	maxTok int64
}

func (s *store) writeUnfenced(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value = v
}

func (s *store) writeFenced(tok int64, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok < s.maxTok {
		return fmt.Errorf("token %d is older than %d", tok, s.maxTok)
	}
	s.maxTok, s.value = tok, v
	return nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "fenced-write", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	const name, data = "/examples/fenced-write/lock", "/examples/fenced-write/data"

	cliA, err := env.Client()
	if err != nil {
		return err
	}
	cliB, err := env.Client()
	if err != nil {
		return err
	}
	sA, err := concurrency.NewSession(cliA, concurrency.WithTTL(2))
	if err != nil {
		return err
	}
	defer sA.Close()
	sB, err := concurrency.NewSession(cliB, concurrency.WithTTL(2))
	if err != nil {
		return err
	}
	defer sB.Close()
	a, b := mutex.New(sA, name), mutex.New(sB, name)

	if err := a.Lock(ctx); err != nil {
		return err
	}
	tokA := a.Token()
	env.Say("A holds the lock with token %d, and pauses (its lease is no longer renewed).", tokA)
	sA.Orphan() // stop the keep-alive: to etcd, A looks frozen

	env.Say("B waits for the lock...")
	if err := b.Lock(ctx); err != nil {
		return err
	}
	tokB := b.Token()
	env.Say("A's lease expired; B holds the lock with token %d.", tokB)
	if tokB <= tokA {
		return fmt.Errorf("token did not increase: A %d, B %d", tokA, tokB)
	}
	<-a.Done()
	env.Say("A's Done() channel closed (%v): a worker that watched it would have stopped. A was paused and did not.", a.Err())

	var plain, fenced store
	plain.writeUnfenced("B's result")
	if err := fenced.writeFenced(tokB, "B's result"); err != nil {
		return err
	}
	if _, err := b.Txn(ctx).Then(clientv3.OpPut(data, "B's result")).Commit(); err != nil {
		return err
	}
	env.Say("B wrote its result.")

	env.Say("\nA wakes up and writes, believing it still holds the lock:")
	plain.writeUnfenced("A's stale result")
	env.Say("  plain store:      accepted -> value is now %q (B's work is lost)", plain.value)
	err = fenced.writeFenced(tokA, "A's stale result")
	env.Say("  fenced store:     rejected (%v) -> value stays %q", err, fenced.value)
	if err == nil {
		return errors.New("the fenced store accepted a stale token")
	}
	resp, err := a.Txn(ctx).Then(clientv3.OpPut(data, "A's stale result")).Commit()
	if err != nil {
		return err
	}
	got, err := cliB.Get(ctx, data)
	if err != nil {
		return err
	}
	env.Say("  guarded etcd Txn: committed=%v -> value stays %q", resp.Succeeded, got.Kvs[0].Value)
	if resp.Succeeded || string(got.Kvs[0].Value) != "B's result" {
		return errors.New("the guarded write of a lost hold committed")
	}
	if plain.value == "B's result" {
		return errors.New("the unfenced write was not lost: the demonstration did not happen")
	}

	if err := b.Unlock(ctx); err != nil {
		return err
	}
	if _, err := cliB.Delete(ctx, data); err != nil {
		return err
	}
	env.Say("\nLesson: pass Token() with every write to shared storage and reject lower tokens,")
	env.Say("or write to etcd through the hold's Txn, which commits only while the hold is valid.")
	return nil
}
