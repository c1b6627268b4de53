package testutil

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Counts are what a [CountedClient] has sent to etcd, for tests that check
// how many round trips an operation costs.
type Counts struct {
	Txns      atomic.Int64 // Txn requests
	TxnErrors atomic.Int64 // Txn requests that failed
	Streams   atomic.Int64 // watch streams opened
}

// CountedClient returns a client of srv that counts its Txns and watch
// streams, closed when the test ends. It talks to the given members only,
// or to every member if none is given.
func CountedClient(tb testing.TB, srv *etcdtest.Cluster, members ...int) (*clientv3.Client, *Counts) {
	tb.Helper()
	eps := srv.Endpoints()
	if len(members) > 0 {
		eps = nil
		for _, i := range members {
			eps = append(eps, srv.Member(i).Endpoint())
		}
	}
	c := new(Counts)
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == "/etcdserverpb.KV/Txn" {
			c.Txns.Add(1)
			if err != nil {
				c.TxnErrors.Add(1)
			}
		}
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if method == "/etcdserverpb.Watch/Watch" && err == nil {
			c.Streams.Add(1)
		}
		return cs, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
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
