package mutex_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// TestLockRoutesAroundSilentMember: one of the client's two endpoints is a
// member whose connection stays open but carries nothing, as a paused
// process's would. The client's round robin sends every other request
// there, and nothing ends such a request but its context; each request of
// an acquisition is bounded and sent again, so every Lock still succeeds,
// long before its own deadline.
func TestLockRoutesAroundSilentMember(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewCluster(t, 3)
	var cut atomic.Int64 // Txns that got no answer
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == "/etcdserverpb.KV/Txn" && err != nil {
			cut.Add(1)
		}
		return err
	}
	var kept atomic.Int64 // keep-alive responses received
	watchKeepAlive := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err == nil && method == "/etcdserverpb.Lease/LeaseKeepAlive" {
			cs = recvCounter{cs, &kept}
		}
		return cs, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{c.Member(0).ProxyEndpoint(), c.Member(1).Endpoint()},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count), grpc.WithChainStreamInterceptor(watchKeepAlive)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	s := testutil.Session(t, cli, 60)
	// Until its first keep-alive is answered, the client gives a lease 5 s
	// (clientv3's defaultTTL), then ends the session: let that answer
	// arrive, and the lease be confirmed once, before the member goes silent.
	require.Eventually(t, func() bool { return kept.Load() > 0 }, 10*time.Second, 10*time.Millisecond)
	warm := mutex.New(s, "/silent/warm")
	require.NoError(t, warm.Lock(t.Context()))
	require.NoError(t, warm.Unlock(t.Context()))

	c.Member(0).Blackhole()
	defer c.Member(0).Unblackhole() // before the session closes
	// Uncontended Locks on names of their own: one Txn each, no waits.
	for i := range 6 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := mutex.New(s, fmt.Sprintf("/silent/%d", i)).Lock(ctx)
		cancel()
		require.NoError(t, err, "lock %d", i)
	}
	require.Positive(t, cut.Load(), "no request went to the silent member: the test proved nothing")
}

// recvCounter counts the messages a client stream receives.
type recvCounter struct {
	grpc.ClientStream
	n *atomic.Int64
}

func (r recvCounter) RecvMsg(m any) error {
	err := r.ClientStream.RecvMsg(m)
	if err == nil {
		r.n.Add(1)
	}
	return err
}
