// Ratelimit caps how many calls to a shared resource (an API with a
// concurrency quota, a database that tolerates few bulk jobs) run at once
// across processes, with a coordkit semaphore.
//
//	go run ./examples/ratelimit [-endpoints URLS]
//
// Six workers, each with its own session as if in its own process, make
// calls that each need one permit; one big batch call needs two. The
// semaphore admits at most three permits' worth at a time, first come
// first served, so the big call is not starved by the small ones. The
// program checks that the resource never saw more than three at once, and
// exits non-zero otherwise.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const (
	name  = "/examples/ratelimit"
	limit = 3
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
}

// resource is the shared thing being protected; it records its load.
type resource struct {
	mu       sync.Mutex // guards load, peak
	load     int
	peak     int
	accepted int
}

func (r *resource) call(weight int, d time.Duration) {
	r.mu.Lock()
	r.load += weight
	r.peak = max(r.peak, r.load)
	r.accepted++
	r.mu.Unlock()
	time.Sleep(d)
	r.mu.Lock()
	r.load -= weight
	r.mu.Unlock()
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "ratelimit", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	var (
		res  resource
		wg   sync.WaitGroup
		errc = make(chan error, 7)
	)
	call := func(who string, weight, calls int) {
		cli, err := env.Client()
		if err != nil {
			errc <- err
			return
		}
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
		if err != nil {
			errc <- err
			return
		}
		defer s.Close()
		sem := semaphore.New(s, name, limit, semaphore.WithValue(who))
		for range calls {
			if err := sem.Acquire(ctx, weight); err != nil {
				errc <- fmt.Errorf("%s: %w", who, err)
				return
			}
			env.Say("  %-5s calls with %d permit(s) (token %d)", who, weight, sem.Token())
			res.call(weight, 30*time.Millisecond)
			if err := sem.Release(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", who, err)
				return
			}
		}
	}
	env.Say("At most %d permits at once; six workers need 1 each, a batch job needs 2.", limit)
	for i := range 6 {
		wg.Go(func() { call(fmt.Sprintf("w%d", i+1), 1, 3) })
	}
	wg.Go(func() { call("batch", 2, 2) })
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	env.Say("%d calls; the resource never had more than %d permits' worth at once (limit %d).", res.accepted, res.peak, limit)
	if res.peak > limit || res.accepted != 6*3+2 {
		return fmt.Errorf("peak %d, calls %d", res.peak, res.accepted)
	}
	return nil
}
