// Workqueue spreads jobs over consumers with coordkit's reliable queue: a
// consumer that dies in the middle of a job does not lose it.
//
//	go run ./examples/workqueue [-endpoints URLS]
//
// Two producers enqueue 20 jobs; three consumers claim them. Each claim is
// held under the consumer's session lease and removed only by Ack. One
// consumer "crashes" after claiming a job (its lease is revoked, as the
// server does when a dead process's lease expires); the job becomes
// visible again and another consumer does it. At the end every job has been
// acknowledged exactly once. It exits non-zero otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/queue"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const name = "/examples/workqueue"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "workqueue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "workqueue", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	admin, err := env.Client()
	if err != nil {
		return err
	}
	defer admin.Delete(context.WithoutCancel(ctx), name+"/", clientv3.WithPrefix())

	const jobs = 20
	for p := range 2 {
		cli, err := env.Client()
		if err != nil {
			return err
		}
		q := queue.New(cli, name)
		for i := range jobs / 2 {
			if err := q.Enqueue(ctx, fmt.Appendf(nil, "job-%02d", p*jobs/2+i)); err != nil {
				return err
			}
		}
	}
	env.Say("2 producers enqueued %d jobs; 3 consumers start.", jobs)

	var (
		mu    sync.Mutex // guards acked
		acked = map[string]string{}
		wg    sync.WaitGroup
		errc  = make(chan error, 3)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, who := range []string{"c1", "c2", "c3"} {
		cli, err := env.Client()
		if err != nil {
			return err
		}
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
		if err != nil {
			return err
		}
		defer s.Close()
		q := queue.New(cli, name, queue.WithSession(s))
		wg.Go(func() {
			crashed := false
			for {
				c, err := q.Claim(ctx)
				if err != nil {
					if ctx.Err() == nil && !crashed {
						errc <- fmt.Errorf("%s: %w", who, err)
					}
					return
				}
				job := string(c.Item().Value)
				if who == "c1" && !crashed {
					env.Say("  %s claimed %s and crashes mid-job", who, job)
					crashed = true
					cli.Revoke(context.WithoutCancel(ctx), s.Lease())
					return
				}
				time.Sleep(20 * time.Millisecond) // the work
				if err := c.Ack(ctx); err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("%s: ack %s: %w", who, job, err)
					}
					return
				}
				mu.Lock()
				if prev, dup := acked[job]; dup {
					mu.Unlock()
					errc <- fmt.Errorf("%s acknowledged twice (%s, %s)", job, prev, who)
					return
				}
				acked[job] = who
				n := len(acked)
				mu.Unlock()
				env.Say("  %s did %s", who, job)
				if n == jobs {
					cancel() // all done: stop everyone
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n, err := queue.New(admin, name).Len(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	env.Say("%d jobs acknowledged, each once; %d left in the queue; the crashed consumer's job was redone.", len(acked), n)
	if len(acked) != jobs || n != 0 {
		return fmt.Errorf("%d of %d jobs done, %d left", len(acked), jobs, n)
	}
	return nil
}
