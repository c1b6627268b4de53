package config_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// interposedClient returns a client of srv, closed when the test ends,
// that calls between once, right after its first read (Range) answers and
// before the caller sees the answer: the window between Publish's read of
// the latest version and its transaction.
func interposedClient(t *testing.T, between func()) *clientv3.Client {
	t.Helper()
	var once sync.Once
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == "/etcdserverpb.KV/Range" {
			once.Do(between)
		}
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Retention deletes old version keys, so a publisher that read an old
// latest version may find its next version key free again: the publish in
// between must still make its transaction fail, or it would pass a stale
// compare-and-set and write a version below the current one.
func TestPublishRacingRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []config.Option
		wantErr  error
		wantLast int64
	}{
		{"expected version", []config.Option{config.WithExpectedVersion(1)}, config.ErrConflict, 3},
		{"no expected version", nil, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := srv.Client()
			name := testName(t, cli)
			_, err := config.Publish(t.Context(), cli, name, []byte("1"))
			require.NoError(t, err)
			var betweenErr error
			a := interposedClient(t, func() {
				for _, d := range []string{"2", "3"} {
					if _, err := config.Publish(t.Context(), cli, name, []byte(d), config.WithRetention(1)); err != nil {
						betweenErr = err
					}
				}
			})
			v, err := config.Publish(within(t), a, name, []byte("a"), append(tt.opts, config.WithRetention(1))...)
			require.NoError(t, betweenErr)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, "Publish() = %d", v)
			} else {
				require.NoError(t, err)
				require.Equal(t, tt.wantLast, v)
			}
			cur, err := config.Get(t.Context(), cli, name)
			require.NoError(t, err)
			require.Equal(t, tt.wantLast, cur.Version, "Get() version")
			h, err := config.History(t.Context(), cli, name, 0)
			require.NoError(t, err)
			require.Len(t, h, 1)
			require.Equal(t, tt.wantLast, h[0].Version, "History() version")
		})
	}
}

// Keys under name/v/ that are not a version key (20 digits) are not
// versions: Publish and History step over them.
func TestStrayKeysInVersionRange(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	for _, d := range []string{"1", "2"} {
		_, err := config.Publish(t.Context(), cli, name, []byte(d))
		require.NoError(t, err)
	}
	for _, k := range []string{"/v/9", "/v/5x", "/v/00000000000000000001x", "/v/00000000000000000002/current"} {
		_, err := cli.Put(t.Context(), name+k, "stray")
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := config.Publish(ctx, cli, name, []byte("3"))
	require.NoError(t, err)
	require.EqualValues(t, 3, v)
	h, err := config.History(t.Context(), cli, name, 2)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.EqualValues(t, 3, h[0].Version)
	require.EqualValues(t, 2, h[1].Version)
}

// A Txn that keeps failing while nothing is published (here: something
// writes the next version key directly each time) does not spin until ctx
// ends: Publish gives up after a few paced rounds with ErrConflict.
func TestPublishGivesUpWithoutProgress(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	_, err := config.Publish(t.Context(), cli, name, []byte("1"))
	require.NoError(t, err)
	var mu sync.Mutex
	next := int64(2)
	rounds := 0
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if r, ok := req.(*etcdserverpb.RangeRequest); ok && len(r.RangeEnd) > 0 && err == nil {
			mu.Lock()
			defer mu.Unlock()
			rounds++
			if _, perr := cli.Put(ctx, fmt.Sprintf("%s/v/%020d", name, next), "squatter"); perr != nil {
				return perr
			}
			next++
		}
		return err
	}
	a, err := clientv3.New(clientv3.Config{
		Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	_, err = config.Publish(within(t), a, name, []byte("x"))
	require.ErrorIs(t, err, config.ErrConflict)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	mu.Lock()
	defer mu.Unlock()
	require.Less(t, rounds, 20, "rounds before giving up")
}
