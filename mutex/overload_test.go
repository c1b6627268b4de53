package mutex_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failingTxns returns a client of srv whose next n Txns, once armed, fail
// with err before reaching etcd, closed when the test ends.
func failingTxns(tb testing.TB, err error) (cli *clientv3.Client, arm func(n int64)) {
	tb.Helper()
	var left atomic.Int64
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/etcdserverpb.KV/Txn" && left.Add(-1) >= 0 {
			return err
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, cerr := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary)},
	})
	if cerr != nil {
		tb.Fatalf("client: %v", cerr)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli, func(n int64) { left.Store(n) }
}

// TestLockRidesOutOverload: the errors an overloaded etcd (a burst of
// thousands of waiters) gives a request while the caller's context lives
// are tried again, whether they come while joining or while waiting for
// the turn; Lock with a context that never ends does not return them. The
// first is what gRPC reports when a request's own deadline has passed but
// its context has not yet been cancelled, so that the client cannot turn
// it into the context's error; injected below etcd's client, it is also
// retried by that client's own interceptor, so only the second case fails
// without coordkit's classification (TestRetryingOverload in
// internal/waitq covers the first at coordkit's level).
func TestLockRidesOutOverload(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name string
		err  error
	}{
		{"deadline exceeded by RST_STREAM", status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL")},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "server overloaded")},
	}
	for _, f := range faults {
		for _, phase := range []string{"join", "wait"} {
			t.Run(f.name+"/"+phase, func(t *testing.T) {
				t.Parallel()
				cli := testutil.Client(t, srv)
				pfx := testutil.Prefix(t, cli)
				holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
				require.NoError(t, holder.Lock(t.Context()))

				fcli, arm := failingTxns(t, f.err)
				waiter := mutex.New(testutil.Session(t, fcli, 10), pfx+"lock")
				if phase == "join" {
					arm(3)
				}
				errc := make(chan error, 1)
				go func() { errc <- waiter.Lock(context.Background()) }()
				deadline := time.After(30 * time.Second)
				for len(testutil.Keys(t, cli, pfx)) < 2 {
					select {
					case err := <-errc:
						t.Fatalf("Lock(context.Background()) = %v before the holder unlocked", err)
					case <-deadline:
						t.Fatal("the waiter did not join within 30s")
					case <-time.After(10 * time.Millisecond):
					}
				}
				if phase == "wait" {
					arm(3)
				}
				require.NoError(t, holder.Unlock(t.Context()))
				select {
				case err := <-errc:
					require.NoError(t, err, "Lock(context.Background())")
				case <-time.After(30 * time.Second):
					t.Fatal("Lock did not return")
				}
				require.NoError(t, waiter.Unlock(t.Context()))
			})
		}
	}
}
