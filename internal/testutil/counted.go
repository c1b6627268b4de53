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
