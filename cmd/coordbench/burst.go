package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/waitq"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// burstSizes are the lines of mutex/burst-N and mutex/line-N; those above
// longBurst take minutes and run only with -long.
var burstSizes = []int{100, 1000, 10000}

const longBurst = 1000

func burstWorkloads() []workload {
	var ws []workload
	for _, n := range burstSizes {
		for _, burst := range []bool{true, false} {
			kind := "burst"
			if !burst {
				kind = "line"
			}
			ws = append(ws, workload{
				name: fmt.Sprintf("mutex/%s-%d", kind, n), unit: "handoffs",
				ours: lineSide(n, burst, ours), theirs: lineSide(n, burst, etcds), vs: "etcd Mutex",
				rounds: 2, long: n > longBurst,
			})
		}
	}
	return ws
}

// lineSide puts n waiters, each on its own session and all on one client,
// in line behind a holder on another client, then drains the line. With
// burst, all n call Lock at once (a cron burst); otherwise each calls Lock
// once the one before it is in line. The rate and latencies are of the
// drain: handoffs per second from the holder's Unlock to the last Lock's
// return, and the time between consecutive Locks' returns. Extras:
// join-s, from the first Lock call until all n keys are in line;
// rpc/handoff, the waiters' client's RPCs (unary calls and stream opens)
// during the drain per handoff, counted once the client has been quiet for
// 200 ms after all joined ([settle]); KiB/waiter, the growth of the heap from
// before the sessions to all joined, per waiter (with the server in
// process its keys, leases and watchers count too); errors, Lock or
// Unlock calls that failed (the side also fails).
func lineSide(n int, burst bool, mk newLocker) side {
	return func(ctx context.Context, e *env) (result, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		hcli, err := e.client()
		if err != nil {
			return result{}, err
		}
		hs, err := concurrency.NewSession(hcli)
		if err != nil {
			return result{}, err
		}
		defer hs.Close()
		defer hcli.Delete(context.WithoutCancel(ctx), e.prefix, clientv3.WithPrefix())
		lock := e.prefix + "lock"
		holder := mk(hs, lock)
		if err := holder.Lock(ctx); err != nil {
			return result{}, err
		}
		// Joins are seen as the creation of waiters' keys under the lock.
		got, err := hcli.Get(ctx, lock, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return result{}, err
		}
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		joins := make(chan struct{}, n)
		var watchWG sync.WaitGroup
		defer watchWG.Wait()
		defer stopWatch()
		wch := hcli.Watch(wctx, lock, clientv3.WithPrefix(), clientv3.WithRev(got.Header.Revision+1))
		watchWG.Go(func() {
			for resp := range wch {
				for _, ev := range resp.Events {
					// A slot of the line's tail is not a waiter.
					if ev.IsCreate() && !waitq.IsTail(lock+"/", string(ev.Kv.Key)) {
						select {
						case joins <- struct{}{}:
						default:
						}
					}
				}
			}
		})

		heap0 := heapAlloc()
		var rpcs rpcCounter
		cli, err := e.countedClient(&rpcs)
		if err != nil {
			return result{}, err
		}
		ss, err := newSessions(cli, n)
		defer closeSessions(ss)
		if err != nil {
			return result{}, err
		}

		var (
			mu       sync.Mutex // guards r, last, failed
			r        result
			last     time.Time
			failed   int
			wg       sync.WaitGroup
			firstErr = make(chan error, 1)
		)
		fail := func(err error) {
			mu.Lock()
			failed++
			mu.Unlock()
			select {
			case firstErr <- err:
			default:
			}
		}
		defer wg.Wait()
		defer cancel()
		start := time.Now()
		for i, s := range ss {
			l := mk(s, lock)
			wg.Go(func() {
				if err := l.Lock(ctx); err != nil {
					fail(err)
					return
				}
				now := time.Now()
				mu.Lock()
				if !last.IsZero() {
					r.lat = append(r.lat, now.Sub(last))
				}
				last = now
				r.ops++
				mu.Unlock()
				if err := l.Unlock(ctx); err != nil {
					fail(err)
				}
			})
			wait := 1 // the line: this one joins before the next calls Lock
			if burst {
				wait = 0
				if i == n-1 {
					wait = n // the burst: all have called Lock
				}
			}
			for range wait {
				select {
				case <-joins:
				case err := <-firstErr:
					return r, fmt.Errorf("joining: %w", err)
				case <-ctx.Done():
					return r, ctx.Err()
				}
			}
		}
		joined := time.Since(start)
		heap := heapAlloc() - heap0
		settle(&rpcs)

		drain := time.Now()
		mu.Lock()
		last = drain
		mu.Unlock()
		base := rpcs.n.Load()
		if err := holder.Unlock(ctx); err != nil {
			return r, err
		}
		wg.Wait()
		r.elapsed = time.Since(drain)
		r.extra = map[string]float64{
			"join-s":      joined.Seconds(),
			"rpc/handoff": float64(rpcs.n.Load()-base) / float64(max(1, r.ops)),
			"KiB/waiter":  float64(heap) / 1024 / float64(n),
			"errors":      float64(failed),
		}
		select {
		case err := <-firstErr:
			return r, fmt.Errorf("%d of %d waiters failed, the first: %w", failed, n, err)
		default:
		}
		return r, nil
	}
}

// newSessions creates n sessions on cli, 32 at a time.
func newSessions(cli *clientv3.Client, n int) ([]*concurrency.Session, error) {
	ss := make([]*concurrency.Session, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ss[i], errs[i] = concurrency.NewSession(cli)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return ss, err
		}
	}
	return ss, nil
}

// closeSessions closes the sessions that were created, 32 at a time.
func closeSessions(ss []*concurrency.Session) {
	next := make(chan *concurrency.Session)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for s := range next {
				s.Close()
			}
		})
	}
	for _, s := range ss {
		if s != nil {
			next <- s
		}
	}
	close(next)
	wg.Wait()
}

// settle waits until the waiters' client has sent nothing for 200 ms (5 s
// at most): a waiter whose key is in line may still be finishing its
// acquisition's first steps (a re-check of the gap between its read and
// its watch), which are not the cost of a handoff.
func settle(rpcs *rpcCounter) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n := rpcs.n.Load()
		time.Sleep(200 * time.Millisecond)
		if rpcs.n.Load() == n {
			return
		}
	}
}

// heapAlloc returns the bytes of live heap after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
