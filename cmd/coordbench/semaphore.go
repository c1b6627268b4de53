package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// semaphoreWorkloads compare a semaphore of limit 3 with coordkit's mutex
// (limit 1, in effect), 8 workers each: with an empty critical section,
// where the cost of an acquisition shows, and with one of 2 ms, where
// holding three at once should.
func semaphoreWorkloads() []workload {
	const limit, workers = 3, 8
	var ws []workload
	for _, hold := range []time.Duration{0, 2 * time.Millisecond} {
		name := fmt.Sprintf("semaphore/L%d-W%d", limit, workers)
		if hold > 0 {
			name += "-hold" + hold.String()
		}
		ws = append(ws, workload{
			name: name, unit: "acquisitions",
			ours: contend(workers, func(s *concurrency.Session, name string, _ int) holder {
				m := semaphore.New(s, name, limit)
				return holder{acquire: func(ctx context.Context) error { return m.Acquire(ctx, 1) }, release: after(hold, m.Release)}
			}),
			theirs: contend(workers, func(s *concurrency.Session, name string, _ int) holder {
				m := mutex.New(s, name)
				return holder{acquire: m.Lock, release: after(hold, m.Unlock)}
			}),
			vs: "coordkit mutex, same workers",
		})
	}
	return ws
}

// after returns release, preceded by a critical section of d.
func after(d time.Duration, release func(context.Context) error) func(context.Context) error {
	if d == 0 {
		return release
	}
	return func(ctx context.Context) error {
		time.Sleep(d)
		return release(ctx)
	}
}

// holder is one worker's way to take and give back what it contends for.
type holder struct {
	acquire, release func(ctx context.Context) error
	write            bool // counted in the "writes" share
}

// contend runs w workers, each with its own session (on up to 8 clients),
// taking and giving back one primitive on one name as fast as they can;
// mk makes worker i's handle. The latency recorded is each acquisition's,
// waiting included. Extras: rpc/op is the unary requests (KV and lease)
// per acquisition, watch/op the watches opened per acquisition, and, when
// some workers write, writes is the share of acquisitions made by writers.
func contend(w int, mk func(s *concurrency.Session, name string, i int) holder) side {
	return func(ctx context.Context, e *env) (result, error) {
		var calls callCounter
		var clis []*clientv3.Client
		for range min(w, 8) {
			c, err := e.client()
			if err != nil {
				return result{}, err
			}
			calls.wrap(c)
			clis = append(clis, c)
		}
		hs := make([]holder, w)
		for i := range w {
			s, err := concurrency.NewSession(clis[i%len(clis)])
			if err != nil {
				return result{}, err
			}
			defer s.Close()
			hs[i] = mk(s, e.prefix+"x", i)
		}
		var (
			mu     sync.Mutex // guards r
			r      result
			writes atomic.Int64
			wg     sync.WaitGroup
			errc   = make(chan error, w)
		)
		rpcs0, watches0 := calls.rpcs.Load(), calls.watches.Load()
		start := time.Now()
		for _, h := range hs {
			wg.Go(func() {
				for time.Since(start) < e.duration {
					t0 := time.Now()
					if err := h.acquire(ctx); err != nil {
						errc <- err
						return
					}
					d := time.Since(t0)
					if h.write {
						writes.Add(1)
					}
					mu.Lock()
					r.lat = append(r.lat, d)
					r.ops++
					mu.Unlock()
					if err := h.release(ctx); err != nil {
						errc <- err
						return
					}
				}
			})
		}
		wg.Wait()
		r.elapsed = time.Since(start)
		close(errc)
		ops := float64(max(1, r.ops))
		r.extra = map[string]float64{
			"rpc/op":   float64(calls.rpcs.Load()-rpcs0) / ops,
			"watch/op": float64(calls.watches.Load()-watches0) / ops,
		}
		if slices.ContainsFunc(hs, func(h holder) bool { return h.write }) {
			r.extra["writes"] = float64(writes.Load()) / ops
		}
		return r, <-errc
	}
}

// callCounter counts the requests clients send, by wrapping their KV, Lease
// and Watcher: every unary KV or lease request (what a primitive pays per
// operation; lease keep-alives stream in the background and are not
// counted), and every watch opened.
type callCounter struct {
	rpcs, watches atomic.Int64
}

// wrap makes cli's requests counted. Call it before anything uses cli.
func (c *callCounter) wrap(cli *clientv3.Client) {
	cli.KV = countingKV{cli.KV, c}
	cli.Lease = countingLease{cli.Lease, c}
	cli.Watcher = countingWatcher{cli.Watcher, c}
}

type countingKV struct {
	clientv3.KV
	c *callCounter
}

func (k countingKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	k.c.rpcs.Add(1)
	return k.KV.Put(ctx, key, val, opts...)
}

func (k countingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	k.c.rpcs.Add(1)
	return k.KV.Get(ctx, key, opts...)
}

func (k countingKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	k.c.rpcs.Add(1)
	return k.KV.Delete(ctx, key, opts...)
}

func (k countingKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	k.c.rpcs.Add(1)
	return k.KV.Do(ctx, op)
}

// Txn counts a transaction when it is created: every caller commits it.
func (k countingKV) Txn(ctx context.Context) clientv3.Txn {
	k.c.rpcs.Add(1)
	return k.KV.Txn(ctx)
}

type countingLease struct {
	clientv3.Lease
	c *callCounter
}

func (l countingLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	l.c.rpcs.Add(1)
	return l.Lease.Grant(ctx, ttl)
}

func (l countingLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	l.c.rpcs.Add(1)
	return l.Lease.Revoke(ctx, id)
}

func (l countingLease) TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	l.c.rpcs.Add(1)
	return l.Lease.TimeToLive(ctx, id, opts...)
}

type countingWatcher struct {
	clientv3.Watcher
	c *callCounter
}

func (w countingWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	w.c.watches.Add(1)
	return w.Watcher.Watch(ctx, key, opts...)
}
