package waitq_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// TestKeyInUse: a key that is written again while Acquire replaces a
// leftover incarnation of it (a concurrent Join of the same key) is nobody's
// safe place in line. For every rule, Acquire fails with ErrKeyInUse,
// deletes the incarnation it saw and takes a new key next time; it never
// waits in the other writer's place, which could admit two holders.
func TestKeyInUse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		turn waitq.Turn
	}{
		{"first", waitq.First{Block: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			direct := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, direct)
			var target atomic.Pointer[mvccpb.KeyValue] // the key, and the lease to write it on
			var rewrote atomic.Bool
			// After the delete of the leftover incarnation, and before the
			// Join that follows it, someone writes the key again.
			rewrite := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				txn, ok := req.(*pb.TxnRequest)
				kv := target.Load()
				if ok && err == nil && kv != nil && deletes(txn, string(kv.Key)) && rewrote.CompareAndSwap(false, true) {
					if _, perr := direct.Put(ctx, string(kv.Key), "other", clientv3.WithLease(clientv3.LeaseID(kv.Lease))); perr != nil {
						t.Errorf("rewrite: %v", perr)
					}
				}
				return err
			}
			cli, err := clientv3.New(clientv3.Config{
				Endpoints:   srv.Endpoints(),
				DialTimeout: 5 * time.Second,
				Logger:      zap.NewNop(),
				DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(rewrite)},
			})
			require.NoError(t, err)
			t.Cleanup(func() { cli.Close() })
			s := testutil.Session(t, cli, 10)
			key := waitq.Key(pfx, s)
			_, err = direct.Put(t.Context(), key, "leftover", clientv3.WithLease(s.Lease()))
			require.NoError(t, err)
			target.Store(&mvccpb.KeyValue{Key: []byte(key), Lease: int64(s.Lease())})
			require.NoError(t, err)

			w := waitq.New(s, pfx, key)
			err = w.Acquire(t.Context(), "", tt.turn)
			require.ErrorIs(t, err, waitq.ErrKeyInUse)
			require.True(t, rewrote.Load(), "the key was written again")
			require.Empty(t, testutil.Keys(t, direct, pfx), "the incarnation seen is deleted")
			require.NotEqual(t, key, w.NextKey(), "a new key next time")
		})
	}
}

// deletes reports whether txn's Then branch deletes key.
func deletes(txn *pb.TxnRequest, key string) bool {
	for _, op := range txn.Success {
		if d := op.GetRequestDeleteRange(); d != nil && string(d.Key) == key {
			return true
		}
	}
	return false
}
