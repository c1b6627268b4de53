package barrier_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestWaitRidesOutTransientErrors: the reads Wait makes fail with errors
// that etcd's client does not retry itself (an overloaded member's
// ResourceExhausted, a request's own deadline); Wait, asked to block
// until the barrier is released, sends them again instead of returning
// them.
func TestWaitRidesOutTransientErrors(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name string
		err  error
	}{
		{"resource exhausted", status.Error(codes.ResourceExhausted, "server overloaded")},
		{"deadline exceeded by RST_STREAM", status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL")},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			cli := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, cli)
			holder := barrier.New(cli, pfx+"b")
			require.NoError(t, holder.Hold(t.Context()))

			var left atomic.Int64
			left.Store(3)
			unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if method == "/etcdserverpb.KV/Range" && left.Add(-1) >= 0 {
					return f.err
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			fcli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second,
				Logger: zap.NewNop(), DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary)}})
			require.NoError(t, err)
			t.Cleanup(func() { fcli.Close() })

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- barrier.New(fcli, pfx+"b").Wait(ctx) }()
			deadline := time.After(30 * time.Second)
			for left.Load() >= 0 {
				select {
				case err := <-errc:
					t.Fatalf("Wait() = %v while held; want it to read again after a transient error", err)
				case <-deadline:
					t.Fatal("Wait did not read past the injected failures")
				case <-time.After(5 * time.Millisecond):
				}
			}
			require.NoError(t, holder.Release(t.Context()))
			select {
			case err := <-errc:
				require.NoError(t, err, "Wait must not return a transient error while ctx lasts")
			case <-time.After(30 * time.Second):
				t.Fatal("Wait() did not return after Release")
			}
		})
	}
}
