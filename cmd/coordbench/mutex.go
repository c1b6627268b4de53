package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func mutexWorkloads() []workload {
	ws := []workload{
		{name: "mutex/uncontended", unit: "locks", ours: lockLoop(1, ours), theirs: floor, vs: "floor (Txn put + Delete)"},
		{name: "mutex/uncontended-vs-etcd", unit: "locks", ours: lockLoop(1, ours), theirs: lockLoop(1, etcds), vs: "etcd Mutex"},
	}
	for _, w := range []int{2, 8, 32} {
		ws = append(ws,
			workload{name: fmt.Sprintf("mutex/contended-W%d", w), unit: "locks", ours: lockLoop(w, ours), theirs: lockLoop(w, etcds), vs: "etcd Mutex"},
			workload{name: fmt.Sprintf("mutex/contended-W%d-vs-floor", w), unit: "locks", ours: lockLoop(w, ours), theirs: floor, vs: "floor"},
		)
	}
	return ws
}

// floor is the least any lock can cost: a put-if-absent Txn on a leased
// key and its Delete, one after the other.
func floor(ctx context.Context, e *env) (result, error) {
	cli, err := e.client()
	if err != nil {
		return result{}, err
	}
	s, err := concurrency.NewSession(cli)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	key := e.prefix + "floor"
	var r result
	start := time.Now()
	for time.Since(start) < e.duration {
		t0 := time.Now()
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, "", clientv3.WithLease(s.Lease()))).Commit()
		if err != nil {
			return r, err
		}
		if !resp.Succeeded {
			return r, fmt.Errorf("floor: key exists")
		}
		if _, err := cli.Delete(ctx, key); err != nil {
			return r, err
		}
		r.lat = append(r.lat, time.Since(t0))
		r.ops++
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// locker is what both implementations offer.
type locker interface {
	Lock(ctx context.Context) error
	Unlock(ctx context.Context) error
}

type newLocker func(s *concurrency.Session, name string) locker

func ours(s *concurrency.Session, name string) locker { return mutex.New(s, name) }

func etcds(s *concurrency.Session, name string) locker { return concurrency.NewMutex(s, name) }

// lockLoop runs w workers, each with its own session (on up to 8 clients),
// taking and releasing one lock as fast as they can. With w > 1 the latency
// recorded is the handoff: from one holder's Unlock returning to the next
// holder's Lock returning.
func lockLoop(w int, mk newLocker) side {
	return func(ctx context.Context, e *env) (result, error) {
		var clis []*clientv3.Client
		for range min(w, 8) {
			c, err := e.client()
			if err != nil {
				return result{}, err
			}
			clis = append(clis, c)
		}
		lockers := make([]locker, w)
		for i := range w {
			s, err := concurrency.NewSession(clis[i%len(clis)])
			if err != nil {
				return result{}, err
			}
			defer s.Close()
			lockers[i] = mk(s, e.prefix+"lock")
		}
		var (
			mu         sync.Mutex // guards r, lastUnlock
			r          result
			lastUnlock time.Time
			wg         sync.WaitGroup
			errc       = make(chan error, w)
		)
		start := time.Now()
		for _, l := range lockers {
			wg.Go(func() {
				for time.Since(start) < e.duration {
					t0 := time.Now()
					if err := l.Lock(ctx); err != nil {
						errc <- err
						return
					}
					now := time.Now()
					mu.Lock()
					switch {
					case w == 1:
						r.lat = append(r.lat, now.Sub(t0))
					case !lastUnlock.IsZero() && lastUnlock.After(t0):
						r.lat = append(r.lat, max(0, now.Sub(lastUnlock)))
					}
					r.ops++
					mu.Unlock()
					if err := l.Unlock(ctx); err != nil {
						errc <- err
						return
					}
					mu.Lock()
					lastUnlock = time.Now()
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		r.elapsed = time.Since(start)
		close(errc)
		return r, <-errc
	}
}
