package registry_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

var views = flag.Int("views", 50, "how many Views TestViewsThroughFullRestart follows the service with (the issue's figure is for 1000)")

// requestLog records when a client sent each request: unary calls and
// stream openings alike, retries included.
type requestLog struct {
	mu      sync.Mutex
	times   []time.Time
	methods []string
}

func (l *requestLog) add(method string) {
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	l.methods = append(l.methods, method)
	l.mu.Unlock()
}

// methods counts the requests sent in [from, to) by method.
func (l *requestLog) byMethod(from, to time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for i, at := range l.times {
		if !at.Before(from) && at.Before(to) {
			m[l.methods[i]]++
		}
	}
	return m
}

// between returns the times of the requests sent in [from, to).
func (l *requestLog) between(from, to time.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []time.Time
	for _, at := range l.times {
		if !at.Before(from) && at.Before(to) {
			ts = append(ts, at)
		}
	}
	return ts
}

// loggedClient returns a client of eps configured as etcdclient.Config
// does (reconnect backoff capped at 3 s) that records its requests in l,
// closed when the test ends.
func loggedClient(t *testing.T, eps []string, l *requestLog) *clientv3.Client {
	t.Helper()
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		l.add(method)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		l.add(method)
		return streamer(ctx, desc, cc, method, opts...)
	}
	ec := etcdclient.Default()
	ec.Endpoints = eps
	cfg, err := ec.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// peak returns the most of ts that fall in any window of width w.
func peak(ts []time.Time, w time.Duration) int {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i, j := 0, 0; j < len(ts); j++ {
		for ts[j].Sub(ts[i]) >= w {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// TestViewsThroughFullRestart follows a service with -views Views on 10
// clients while etcd (one member: the whole cluster; three would not fit
// this test machine next to its neighbours) is stopped for 10 s and
// started again. No View ever shows fewer instances than are registered;
// while etcd is down the Views' requests follow their backoff (fewer than
// maxPerView each per 10 s, where a busy loop would send thousands); once
// it is back every View is fresh again, and the requests that brings are
// reported with their peak per 100 ms, which jitter keeps under half the
// Views.
func TestViewsThroughFullRestart(t *testing.T) {
	t.Parallel()
	const clients, maxPerView, outage = 10, 10, 10 * time.Second
	es := etcdtest.NewServer(t)
	const svc = "/svc"
	rcli, _ := keepAliveClient(t, es.Endpoints(), true)
	for i := range 2 {
		register(t, rcli, svc, fmt.Sprint("i", i), registry.WithTTL(60))
	}
	var log requestLog
	var clis []*clientv3.Client
	for range clients {
		clis = append(clis, loggedClient(t, es.Endpoints(), &log))
	}
	var stops []func() int
	var vs []*registry.View
	for i := range *views {
		v := registry.Watch(clis[i%clients], svc)
		vs = append(vs, v)
		stops = append(stops, minSeen(v))
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for _, v := range vs {
		waitReady(t, v)
	}

	es.Member(0).Stop()
	down := time.Now()
	time.Sleep(outage)
	during := log.between(down, time.Now())
	if err := es.Member(0).Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	eventually(t, "every View fresh again", func() bool {
		for _, v := range vs {
			if v.Stale() {
				return false
			}
		}
		return true
	})
	fresh := time.Now()
	time.Sleep(time.Until(back.Add(outage)))
	after := log.between(back, back.Add(outage))
	for i, stop := range stops {
		if n := stop(); n != 2 {
			t.Errorf("View %d showed %d instances, want 2 throughout", i, n)
		}
	}
	stops = nil
	perView := float64(len(during)) / float64(*views)
	if perView >= maxPerView {
		t.Errorf("%d requests from %d Views in %v of outage: %.1f per View, want fewer than %d", len(during), *views, outage, perView, maxPerView)
	}
	// Every View checks etcd once per probe interval without news; the
	// reconnection is one moment for all of them, and only jitter keeps
	// their checks from coming all at once a probe interval later.
	if p := peak(after, 100*time.Millisecond); *views >= 20 && p > *views/2 {
		t.Errorf("%d of %d Views' requests in one 100 ms after etcd was back: not spread", p, *views)
	}
	t.Logf("requests by method during the outage: %v; after: %v", log.byMethod(down, back), log.byMethod(back, back.Add(outage)))
	t.Logf("%d Views on %d clients: %.2f requests per View per %v of outage (peak %d per 100 ms); after etcd was back all fresh in %v, %.2f requests per View in the next %v, peak %d per 100 ms",
		*views, clients, perView, outage, peak(during, 100*time.Millisecond), fresh.Sub(back).Round(time.Millisecond),
		float64(len(after))/float64(*views), outage, peak(after, 100*time.Millisecond))
}
