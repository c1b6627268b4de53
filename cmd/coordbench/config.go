package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/coordkit/coordkit/config"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// propagateWatchers and propagateClients are the watchers of config/propagate
// and the clients they are spread over, as services on a few hosts would be.
const propagateWatchers, propagateClients = 100, 10

func configWorkloads() []workload {
	return []workload{
		// One op is one publish; the latency is per watcher, from the call
		// that publishes to the moment that watcher holds the new value.
		// The baseline is a plain Put of one key and plain etcd watches on
		// it: no version, history or validation, nothing decoded.
		{name: "config/propagate", unit: "publishes", ours: configPropagate, theirs: etcdPropagate, vs: "etcd Put → 100 Watch"},
	}
}

// fanIn collects, per publish, one arrival from every watcher.
type fanIn struct {
	mu      sync.Mutex // guards the fields below
	t0      time.Time
	seq     int // the value being propagated
	lat     []time.Duration
	left    int
	all     chan struct{} // closed when left reaches 0
	lastLat []time.Duration
}

// start begins the propagation of value seq.
func (f *fanIn) start(seq int) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t0, f.seq, f.left, f.all = time.Now(), seq, propagateWatchers, make(chan struct{})
	return f.all
}

// arrived records that a watcher holds value seq now.
func (f *fanIn) arrived(seq int) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq != f.seq || f.left == 0 {
		return
	}
	d := now.Sub(f.t0)
	f.lat = append(f.lat, d)
	if f.left--; f.left == 0 {
		f.lastLat = append(f.lastLat, d)
		close(f.all)
	}
}

// propagate publishes values 1, 2, ... with pub, each after every watcher
// saw the one before, for e.duration.
func (f *fanIn) propagate(ctx context.Context, e *env, pub func(ctx context.Context, seq int) error) (result, error) {
	var r result
	start := time.Now()
	for seq := 1; time.Since(start) < e.duration; seq++ {
		all := f.start(seq)
		if err := pub(ctx, seq); err != nil {
			return r, err
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			return r, fmt.Errorf("value %d did not reach every watcher within 10s", seq)
		case <-ctx.Done():
			return r, ctx.Err()
		}
		r.ops++
	}
	r.elapsed = time.Since(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	r.lat = f.lat
	var sum time.Duration
	for _, d := range f.lastLat {
		sum += d
	}
	r.extra = map[string]float64{"all-100-ms": (sum / time.Duration(max(1, len(f.lastLat)))).Seconds() * 1e3}
	return r, nil
}

// clients returns propagateClients clients of e.
func clients(e *env) ([]*clientv3.Client, error) {
	var out []*clientv3.Client
	for range propagateClients {
		cli, err := e.client()
		if err != nil {
			return nil, err
		}
		out = append(out, cli)
	}
	return out, nil
}

func configPropagate(ctx context.Context, e *env) (result, error) {
	cls, err := clients(e)
	if err != nil {
		return result{}, err
	}
	name := e.prefix + "cfg"
	f := &fanIn{}
	for i := range propagateWatchers {
		w, err := config.Watch(ctx, cls[i%len(cls)], name, func(b []byte) (int, error) { return strconv.Atoi(string(b)) })
		if err != nil {
			return result{}, err
		}
		defer w.Close()
		w.Subscribe(func(_, n int) { f.arrived(n) })
	}
	pcli, err := e.client()
	if err != nil {
		return result{}, err
	}
	return f.propagate(ctx, e, func(ctx context.Context, seq int) error {
		_, err := config.Publish(ctx, pcli, name, []byte(strconv.Itoa(seq)))
		return err
	})
}

func etcdPropagate(ctx context.Context, e *env) (result, error) {
	cls, err := clients(e)
	if err != nil {
		return result{}, err
	}
	key := e.prefix + "cfg/current"
	f := &fanIn{}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range propagateWatchers {
		// Watches on one client with like contexts share one gRPC stream,
		// as the config.Watchers on one client do.
		ch := cls[i%len(cls)].Watch(clientv3.WithRequireLeader(wctx), key)
		wg.Go(func() {
			for wr := range ch {
				for _, ev := range wr.Events {
					n, _ := strconv.Atoi(string(ev.Kv.Value))
					f.arrived(n)
				}
			}
		})
	}
	pcli, err := e.client()
	if err != nil {
		return result{}, err
	}
	return f.propagate(ctx, e, func(ctx context.Context, seq int) error {
		_, err := pcli.Put(ctx, key, strconv.Itoa(seq))
		return err
	})
}
