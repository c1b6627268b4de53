// Quickstart is a tour of coordkit in one process: three workers, each
// with its own etcd client and session as if on three hosts, use every
// primitive in turn, then register as instances of a service and follow a
// configuration.
//
//	go run ./examples/quickstart [-endpoints URLS]
//
// With no -endpoints it starts an embedded etcd, so it runs anywhere Go
// does. It finishes in a few seconds and exits non-zero if anything it
// shows did not hold.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/queue"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/coordkit/coordkit/stm"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const root = "/examples/quickstart/"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// worker is one simulated host.
type worker struct {
	name string
	cli  *clientv3.Client
	s    *concurrency.Session
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "quickstart", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	var workers []*worker
	for _, name := range []string{"ann", "bob", "cid"} {
		cli, err := env.Client()
		if err != nil {
			return err
		}
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
		if err != nil {
			return err
		}
		defer s.Close()
		workers = append(workers, &worker{name: name, cli: cli, s: s})
	}
	defer workers[0].cli.Delete(context.WithoutCancel(ctx), root, clientv3.WithPrefix())

	for _, step := range []struct {
		title string
		f     func(context.Context, *demo.Env, []*worker) error
	}{
		{"mutex: one at a time, with fencing tokens", tourMutex},
		{"election: a leader, and a takeover when it dies", tourElection},
		{"semaphore: at most two at a time", tourSemaphore},
		{"queue: jobs spread over the workers, each done once", tourQueue},
		{"double barrier: everyone starts together, leaves together", tourBarrier},
		{"stm: a transfer between accounts keeps the sum", tourSTM},
		{"registry: instances register, drain and leave; a View follows them", tourRegistry},
		{"config: a typed config reloaded live, a bad value refused, a rollback", tourConfig},
	} {
		env.Say("== %s", step.title)
		if err := step.f(ctx, env, workers); err != nil {
			return fmt.Errorf("%s: %w", step.title, err)
		}
		env.Say("")
	}
	env.Say("All of it held. Next: README.md, and go test ./... to run the suite.")
	return nil
}

func tourMutex(ctx context.Context, env *demo.Env, ws []*worker) error {
	var (
		inside atomic.Int32
		mu     sync.Mutex // guards tokens
		tokens []int64
	)
	err := each(ws, func(w *worker) error {
		m := mutex.New(w.s, root+"mutex")
		for range 2 {
			if err := m.Lock(ctx); err != nil {
				return err
			}
			if inside.Add(1) != 1 {
				return errors.New("two holders at once")
			}
			mu.Lock()
			tokens = append(tokens, m.Token())
			env.Say("  %s holds the lock, token %d", w.name, m.Token())
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			if err := m.Unlock(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !slices.IsSorted(tokens) || len(slices.Compact(slices.Clone(tokens))) != len(tokens) {
		return fmt.Errorf("tokens do not strictly increase: %v", tokens)
	}
	env.Say("  tokens strictly increase from holder to holder: a store that rejects lower tokens is safe from late writers")
	return nil
}

func tourElection(ctx context.Context, env *demo.Env, ws []*worker) error {
	// The first worker leads on a session of its own, which then "dies":
	// its lease is revoked, as the server would do once it expired.
	s, err := concurrency.NewSession(ws[0].cli, concurrency.WithTTL(2))
	if err != nil {
		return err
	}
	defer s.Close()
	first := election.New(s, root+"election")
	if err := first.Campaign(ctx, ws[0].name); err != nil {
		return err
	}
	env.Say("  %s leads (token %d)", ws[0].name, first.Token())
	second := election.New(ws[1].s, root+"election")
	won := make(chan error, 1)
	go func() { won <- second.Campaign(ctx, ws[1].name) }()
	time.Sleep(100 * time.Millisecond)
	env.Say("  %s's session dies (lease revoked)", ws[0].name)
	if _, err := ws[0].cli.Revoke(ctx, s.Lease()); err != nil {
		return err
	}
	select {
	case <-first.Done():
		env.Say("  %s learns it lost the leadership: %v", ws[0].name, first.Err())
	case <-time.After(10 * time.Second):
		return errors.New("the old leader was not told")
	}
	if err := <-won; err != nil {
		return err
	}
	li, err := second.Leader(ctx)
	if err != nil {
		return err
	}
	env.Say("  %s leads now (token %d > %d)", li.Value, second.Token(), first.Token())
	if li.Value != ws[1].name || second.Token() <= first.Token() {
		return fmt.Errorf("unexpected leader %q", li.Value)
	}
	return second.Resign(ctx)
}

func tourSemaphore(ctx context.Context, env *demo.Env, ws []*worker) error {
	var inside, most atomic.Int32
	err := each(ws, func(w *worker) error {
		sem := semaphore.New(w.s, root+"semaphore", 2)
		for range 2 {
			if err := sem.Acquire(ctx, 1); err != nil {
				return err
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			env.Say("  %s is in (%d inside)", w.name, n)
			time.Sleep(30 * time.Millisecond)
			inside.Add(-1)
			if err := sem.Release(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if most.Load() > 2 {
		return fmt.Errorf("%d inside at once", most.Load())
	}
	env.Say("  never more than %d inside at once", most.Load())
	return nil
}

func tourQueue(ctx context.Context, env *demo.Env, ws []*worker) error {
	producer := queue.New(ws[0].cli, root+"queue")
	const jobs = 9
	for i := range jobs {
		if err := producer.Enqueue(ctx, []byte("job-"+strconv.Itoa(i))); err != nil {
			return err
		}
	}
	var (
		mu   sync.Mutex // guards done
		done = map[string]string{}
	)
	err := each(ws, func(w *worker) error {
		q := queue.New(w.cli, root+"queue", queue.WithSession(w.s))
		for {
			c, err := q.TryClaim(ctx)
			if errors.Is(err, queue.ErrEmpty) {
				return nil
			}
			if err != nil {
				return err
			}
			job := string(c.Item().Value)
			mu.Lock()
			if who, dup := done[job]; dup {
				mu.Unlock()
				return fmt.Errorf("%s done twice, by %s and %s", job, who, w.name)
			}
			done[job] = w.name
			mu.Unlock()
			time.Sleep(10 * time.Millisecond) // the work
			if err := c.Ack(ctx); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return err
	}
	per := map[string]int{}
	for _, who := range done {
		per[who]++
	}
	env.Say("  %d jobs, each done once: ann %d, bob %d, cid %d", len(done), per["ann"], per["bob"], per["cid"])
	if len(done) != jobs {
		return fmt.Errorf("%d of %d jobs done", len(done), jobs)
	}
	return nil
}

func tourBarrier(ctx context.Context, env *demo.Env, ws []*worker) error {
	var entered atomic.Int32
	return each(ws, func(w *worker) error {
		b := barrier.NewDouble(w.s, root+"barrier", len(ws))
		time.Sleep(time.Duration(len(w.name)*int(w.name[0]-'a')) * time.Millisecond) // arrive at different times
		entered.Add(1)
		if err := b.Enter(ctx); err != nil {
			return err
		}
		if n := entered.Load(); n != int32(len(ws)) {
			return fmt.Errorf("%s passed Enter with %d of %d arrived", w.name, n, len(ws))
		}
		env.Say("  %s starts: all %d are in", w.name, len(ws))
		return b.Leave(ctx)
	})
}

func tourSTM(ctx context.Context, env *demo.Env, ws []*worker) error {
	cli := ws[0].cli
	for _, a := range []string{"a", "b"} {
		if _, err := cli.Put(ctx, root+"acct/"+a, "100"); err != nil {
			return err
		}
	}
	err := each(ws, func(w *worker) error {
		for range 5 {
			_, err := stm.Run(ctx, w.cli, func(tx stm.Tx) error {
				v, err := tx.GetMany(root+"acct/a", root+"acct/b")
				if err != nil {
					return err
				}
				a, _ := strconv.Atoi(v[0])
				b, _ := strconv.Atoi(v[1])
				tx.Put(root+"acct/a", strconv.Itoa(a-7))
				tx.Put(root+"acct/b", strconv.Itoa(b+7))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	resp, err := cli.Get(ctx, root+"acct/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	sum := 0
	for _, kv := range resp.Kvs {
		n, _ := strconv.Atoi(string(kv.Value))
		sum += n
		env.Say("  %s = %d", kv.Key[len(root+"acct/"):], n)
	}
	env.Say("  15 concurrent transfers later the sum is %d", sum)
	if sum != 200 {
		return fmt.Errorf("sum %d, want 200", sum)
	}
	return nil
}

// each runs f for every worker at once and returns the first error.
func each(ws []*worker, f func(*worker) error) error {
	errs := make(chan error, len(ws))
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { errs <- f(w) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
