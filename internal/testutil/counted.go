package testutil

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Counts are what a [CountedClient] has sent to etcd, for tests that check
// how many round trips an operation costs.
type Counts struct {
	Txns    atomic.Int64 // Txn requests
	Streams atomic.Int64 // watch streams opened
	Watches atomic.Int64 // watches created, on any stream

	mu      sync.Mutex
	watched []string // the key of each watch created
}

// WatchesUnder returns how many watches were created on keys under prefix
// (a session's idle watch, which keeps its stream open, is not).
func (c *Counts) WatchesUnder(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.watched {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// CountedClient returns a client of srv that counts its Txns, watch streams
// and watches, closed when the test ends.
func CountedClient(tb testing.TB, srv *etcdtest.Cluster) (*clientv3.Client, *Counts) {
	tb.Helper()
	c := new(Counts)
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/etcdserverpb.KV/Txn" {
			c.Txns.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if method == "/etcdserverpb.Watch/Watch" && err == nil {
			c.Streams.Add(1)
			cs = &countingStream{ClientStream: cs, c: c}
		}
		return cs, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)},
	})
	if err != nil {
		tb.Fatalf("testutil: counted client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli, c
}

// countingStream counts the watches created on a watch stream.
type countingStream struct {
	grpc.ClientStream
	c *Counts
}

func (s *countingStream) SendMsg(m any) error {
	if req, ok := m.(*etcdserverpb.WatchRequest); ok && req.GetCreateRequest() != nil {
		s.c.Watches.Add(1)
		s.c.mu.Lock()
		s.c.watched = append(s.c.watched, string(req.GetCreateRequest().Key))
		s.c.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

// Locker is what [Handoffs] takes turns on: a lock, or an adapter for an
// election's Campaign and Resign.
type Locker interface {
	Lock(ctx context.Context) error
	Unlock(ctx context.Context) error
}

// Handoffs makes a and b, which must be handles on the same lock under
// prefix, hold it in turns for rounds handoffs, each waiting behind the
// other every time: a holds; b joins the line behind it; a releases, so b
// holds; a joins behind b; b releases; and so on. Nothing is held when it
// returns.
func Handoffs(tb testing.TB, cli *clientv3.Client, prefix string, rounds int, a, b Locker) {
	tb.Helper()
	ctx := tb.Context()
	if err := a.Lock(ctx); err != nil {
		tb.Fatalf("testutil: first lock: %v", err)
	}
	holder, next := a, b
	for i := range rounds {
		got := make(chan error, 1)
		go func() { got <- next.Lock(ctx) }()
		// Release only once the next one waits in line behind the holder.
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				tb.Fatalf("testutil: handoff %d: %v", i, err)
			}
			if resp.Count == 2 {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("testutil: handoff %d: %d keys under %s, want holder and waiter", i, resp.Count, prefix)
			}
			time.Sleep(time.Millisecond)
		}
		if err := holder.Unlock(ctx); err != nil {
			tb.Fatalf("testutil: handoff %d: unlock: %v", i, err)
		}
		if err := <-got; err != nil {
			tb.Fatalf("testutil: handoff %d: lock: %v", i, err)
		}
		holder, next = next, holder
	}
	if err := holder.Unlock(ctx); err != nil {
		tb.Fatalf("testutil: last unlock: %v", err)
	}
}

// RequireHandoffsReuseWatches checks that two handles made by mk, on their
// own sessions of one counted client, taking the lock called name in turns
// (each waiting behind the other every time: [Handoffs]), open no watch
// per handoff once their first two waits have opened theirs. mk's name is the
// lock's name; its keys must lie under name + "/".
func RequireHandoffsReuseWatches(t *testing.T, srv *etcdtest.Cluster, mk func(s *concurrency.Session, name string) Locker) {
	t.Helper()
	cli, c := CountedClient(t, srv)
	pfx := Prefix(t, cli)
	a, b := mk(Session(t, cli, 10), pfx+"lock"), mk(Session(t, cli, 10), pfx+"lock")
	// A handle keeps its watch from its second wait on: two each.
	Handoffs(t, cli, pfx+"lock/", 4, a, b)
	before := c.WatchesUnder(pfx)
	Handoffs(t, cli, pfx+"lock/", 6, a, b)
	if got := c.WatchesUnder(pfx); got != before {
		t.Errorf("6 more handoffs opened %d watches, want none (the first waits opened %d)", got-before, before)
	}
}
