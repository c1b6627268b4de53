package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coordkit/coordkit/registry"
	"github.com/coordkit/coordkit/registry/grpcresolver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// watchers is how many clients of a service each propagation trial
// waits for, spread over watcherClients etcd clients.
const (
	watchers       = 100
	watcherClients = 10
)

func registryWorkloads() []workload {
	return []workload{
		// The latency is from the write of an instance's key being sent to
		// the last of 100 watchers seeing it; commit-ms is the write's own
		// round trip, the floor under it.
		{name: "registry/propagate-N100", unit: "changes", ours: propagate(viewWatcher), theirs: propagate(endpointsWatcher), vs: "etcd endpoints watch"},
		// The same, to the last of 100 gRPC resolvers' UpdateState.
		{name: "registry/propagate-grpc-N100", unit: "changes", ours: propagate(ourResolverWatcher), theirs: propagate(etcdResolverWatcher), vs: "etcd resolver"},
		// The latency is from the response to a delete of an instance's
		// key by another client to a watcher seeing the key put back.
		{name: "registry/repair", unit: "repairs", ours: repair(registryRepairer), theirs: repair(watchRepairer), vs: "floor (watch + put)"},
	}
}

// watcher follows svc through cli and calls report with the set of
// addresses it sees after each update, from one goroutine, until ctx
// ends; it returns once it has started and a func that waits for it.
type watcher func(ctx context.Context, cli *clientv3.Client, svc string, report func(map[string]bool)) (wait func(), err error)

func viewWatcher(ctx context.Context, cli *clientv3.Client, svc string, report func(map[string]bool)) (func(), error) {
	v := registry.Watch(cli, svc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer v.Close()
		changes := v.Changes()
		select {
		case <-ctx.Done():
			return
		case <-v.Ready():
		}
		for {
			set := map[string]bool{}
			for _, in := range v.Snapshot().Instances {
				set[in.Addr] = true
			}
			report(set)
			select {
			case <-ctx.Done():
				return
			case <-changes:
			}
		}
	}()
	return func() { <-done }, nil
}

func endpointsWatcher(ctx context.Context, cli *clientv3.Client, svc string, report func(map[string]bool)) (func(), error) {
	m, err := endpoints.NewManager(cli, svc)
	if err != nil {
		return nil, err
	}
	wch, err := m.NewWatchChannel(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		byKey := map[string]string{}
		for ups := range wch {
			for _, u := range ups {
				switch u.Op {
				case endpoints.Add:
					byKey[u.Key] = u.Endpoint.Addr
				case endpoints.Delete:
					delete(byKey, u.Key)
				}
			}
			set := map[string]bool{}
			for _, a := range byKey {
				set[a] = true
			}
			report(set)
		}
	}()
	return func() { <-done }, nil
}

func ourResolverWatcher(ctx context.Context, cli *clientv3.Client, svc string, report func(map[string]bool)) (func(), error) {
	return resolverWatcher(ctx, grpcresolver.New(cli), grpcresolver.Target(svc), report)
}

func etcdResolverWatcher(ctx context.Context, cli *clientv3.Client, svc string, report func(map[string]bool)) (func(), error) {
	b, err := etcdresolver.NewBuilder(cli)
	if err != nil {
		return nil, err
	}
	return resolverWatcher(ctx, b, "etcd:///"+svc, report)
}

// resolverWatcher builds a resolver for target whose ClientConn reports
// each UpdateState.
func resolverWatcher(ctx context.Context, b resolver.Builder, target string, report func(map[string]bool)) (func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	r, err := b.Build(resolver.Target{URL: *u}, reportingConn{report}, resolver.BuildOptions{})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		r.Close()
	}()
	return func() { <-done }, nil
}

// reportingConn is the part of a gRPC ClientConn a resolver talks to,
// reporting the addresses of each state.
type reportingConn struct{ report func(map[string]bool) }

func (c reportingConn) UpdateState(s resolver.State) error {
	set := map[string]bool{}
	for _, ep := range s.Endpoints { // etcd's resolver sets only Endpoints
		for _, a := range ep.Addresses {
			set[a.Addr] = true
		}
	}
	c.report(set)
	return nil
}

func (reportingConn) ReportError(error)                                    {}
func (reportingConn) NewAddress([]resolver.Address)                        {}
func (reportingConn) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

// msgCountedClient returns a new client, closed when the workload side ends,
// that adds to n each unary request it sends and each message it sends or
// receives on a stream (a watch's events, a keep-alive).
func (e *env) msgCountedClient(n *atomic.Int64) (*clientv3.Client, error) {
	cc, err := e.cfg.ClientConfig()
	if err != nil {
		return nil, err
	}
	unary := func(ctx context.Context, method string, req, reply any, conn *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		n.Add(1)
		return invoker(ctx, method, req, reply, conn, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, conn *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, conn, method, opts...)
		if err != nil {
			return nil, err
		}
		return countedStream{cs, n}, nil
	}
	cc.DialOptions = append(cc.DialOptions, grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clients = append(e.clients, cli)
	e.mu.Unlock()
	return cli, nil
}

// countedStream counts the messages sent and received on a stream.
type countedStream struct {
	grpc.ClientStream
	n *atomic.Int64
}

func (s countedStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

func (s countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// target is what the watchers are waiting for: addr present or absent.
type target struct {
	addr    string
	present bool
	gen     int
}

// propagate writes an instance's key (a value both coordkit and etcd's
// naming read) and waits for every watcher to see it, then deletes it and
// waits again; only the write is measured.
func propagate(w watcher) side {
	return func(ctx context.Context, e *env) (result, error) {
		var r result
		svc := strings.TrimSuffix(e.prefix, "/") + "/svc"
		wctx, stop := context.WithCancel(ctx)
		var waits []func()
		defer func() {
			stop()
			for _, wait := range waits {
				wait()
			}
		}()
		// etcd's watch channel sends nothing for an empty service: one
		// instance that stays makes every watcher's first report come.
		wcli, err := e.client()
		if err != nil {
			return r, err
		}
		if _, err := wcli.Put(ctx, svc+"/anchor", `{"Op":0,"Addr":"anchor:80","Metadata":null}`); err != nil {
			return r, err
		}
		defer wcli.Delete(context.WithoutCancel(ctx), svc+"/", clientv3.WithPrefix())
		var want atomic.Pointer[target]
		want.Store(&target{})
		seen := make(chan time.Time, watchers)
		var ready sync.WaitGroup
		ready.Add(watchers)
		var clis []*clientv3.Client
		var msgs atomic.Int64
		for range watcherClients {
			cli, err := e.msgCountedClient(&msgs)
			if err != nil {
				return r, err
			}
			clis = append(clis, cli)
		}
		for i := range watchers {
			var lastGen atomic.Int64 // only the watcher's goroutine uses it
			first := true
			wait, err := w(wctx, clis[i%len(clis)], svc, func(set map[string]bool) {
				if first {
					first = false
					ready.Done()
				}
				t := want.Load()
				if int64(t.gen) != lastGen.Load() && set[t.addr] == t.present {
					lastGen.Store(int64(t.gen))
					seen <- time.Now()
				}
			})
			if err != nil {
				return r, err
			}
			waits = append(waits, wait)
		}
		ready.Wait()
		var commit time.Duration
		waitAll := func(t0 time.Time) (time.Duration, error) {
			var last time.Time
			timeout := time.After(10 * time.Second)
			for range watchers {
				select {
				case at := <-seen:
					last = at
				case <-timeout:
					return 0, fmt.Errorf("propagate: not every watcher saw the change within 10 s")
				}
			}
			return last.Sub(t0), nil
		}
		start, msgs0 := time.Now(), msgs.Load()
		for i := 1; time.Since(start) < e.duration || r.ops == 0; i++ {
			addr := fmt.Sprintf("host-%d:80", i)
			key := svc + "/" + addr
			want.Store(&target{addr: addr, present: true, gen: 2 * i})
			t0 := time.Now()
			if _, err := wcli.Put(ctx, key, `{"Op":0,"Addr":"`+addr+`","Metadata":null}`); err != nil {
				return r, err
			}
			commit += time.Since(t0)
			d, err := waitAll(t0)
			if err != nil {
				return r, err
			}
			r.lat = append(r.lat, d)
			r.ops++
			want.Store(&target{addr: addr, present: false, gen: 2*i + 1})
			if _, err := wcli.Delete(ctx, key); err != nil {
				return r, err
			}
			if _, err := waitAll(time.Now()); err != nil {
				return r, err
			}
		}
		r.elapsed = time.Since(start)
		r.extra = map[string]float64{
			"commit-ms": float64(commit.Microseconds()) / 1000 / float64(r.ops),
			// Each op is two changes, the put and the delete.
			"watcher-msgs/change": float64(msgs.Load()-msgs0) / float64(2*r.ops),
		}
		return r, nil
	}
}
