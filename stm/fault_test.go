package stm_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// txnTap counts the Txn RPCs of a client and lets a test fail them. fault,
// if set, gets the RPC's number (from 1) and the real call, and returns the
// RPC's error: the real call's, or one it makes up before or after it.
type txnTap struct {
	mu    sync.Mutex // guards n
	n     int
	fault func(n int, req *pb.TxnRequest, call func() error) error
}

func (tap *txnTap) count() int {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return tap.n
}

// client returns a client whose Txn RPCs go through tap.
func (tap *txnTap) client(t *testing.T) *clientv3.Client {
	t.Helper()
	intercept := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		call := func() error { return invoker(ctx, method, req, reply, cc, opts...) }
		if method != "/etcdserverpb.KV/Txn" {
			return call()
		}
		tap.mu.Lock()
		tap.n++
		n := tap.n
		tap.mu.Unlock()
		if tap.fault != nil {
			return tap.fault(n, req.(*pb.TxnRequest), call)
		}
		return call()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(intercept)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// incr adds 1 to key: two RPCs, a read and the commit, when nothing
// interferes.
func incr(key string) func(stm.Tx) error {
	return func(tx stm.Tx) error {
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(v)
		tx.Put(key, strconv.Itoa(n+1))
		return nil
	}
}

var errUnavailable = status.Error(codes.Unavailable, "injected: connection reset")

func TestTransientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// fault fails Txn RPC n; the read is RPC 1 and the commit RPC 2.
		fault    func(n int, call func() error) error
		err      error // wanted from Run, checked with errors.Is
		attempts int
		errors   int
	}{{
		name: "read unavailable: read again",
		fault: func(n int, call func() error) error {
			if n == 1 {
				return errUnavailable
			}
			return call()
		},
		attempts: 2, errors: 1,
	}, {
		name: "commit rejected for no leader: run again",
		fault: func(n int, call func() error) error {
			if n == 2 {
				return rpctypes.ErrGRPCNoLeader
			}
			return call()
		},
		attempts: 2, errors: 1,
	}, {
		name: "commit lost before etcd: sent again as is",
		fault: func(n int, call func() error) error {
			if n == 2 {
				return errUnavailable
			}
			return call()
		},
		attempts: 1, errors: 1,
	}, {
		// etcd committed but the answer was lost: sending it again
		// conflicts with itself. Running fn again would add 1 twice.
		name: "commit answer lost: uncertain, applied once",
		fault: func(n int, call func() error) error {
			err := call()
			if n == 2 {
				return errUnavailable
			}
			return err
		},
		err: stm.ErrUncertain, attempts: 1, errors: 1,
	}, {
		name: "permission denied: returned at once",
		fault: func(n int, call func() error) error {
			return rpctypes.ErrGRPCPermissionDenied
		},
		err: rpctypes.ErrPermissionDenied, attempts: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli, p := setup(t)
			put(t, cli, p+"n", "0")
			tap := &txnTap{fault: func(n int, _ *pb.TxnRequest, call func() error) error { return tt.fault(n, call) }}
			res, err := stm.Run(t.Context(), tap.client(t), incr(p+"n"))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				requireNoStutter(t, err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.attempts, res.Attempts, "Run() attempts")
			require.Equal(t, tt.errors, res.Errors, "Run() errors")
			if tt.err == nil || tt.err == stm.ErrUncertain {
				require.Equal(t, "1", get(t, cli, p+"n"), "committed exactly once")
			} else {
				require.Equal(t, "0", get(t, cli, p+"n"), "nothing committed")
			}
		})
	}
}

// A read error ends the attempt even if fn ignores it.
func TestIgnoredReadErrorStillAborts(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	tap := &txnTap{fault: func(int, *pb.TxnRequest, func() error) error { return rpctypes.ErrGRPCPermissionDenied }}
	res, err := stm.Run(t.Context(), tap.client(t), func(tx stm.Tx) error {
		v, _ := tx.Get(p + "a")
		_, err := tx.Get(p + "b")
		require.ErrorIs(t, err, rpctypes.ErrPermissionDenied, "later reads fail too")
		tx.Put(p+"a", v+"x")
		return nil
	})
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, 1, tap.count(), "no commit sent")
	require.Equal(t, "<none>", get(t, cli, p+"a"))
}

// The read of an attempt after a conflict comes with the failed commit, and
// WithPrefetch reads keys with the first read: round trips are saved.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	for _, k := range []string{"a", "b", "c"} {
		put(t, cli, p+k, "1")
	}
	other := testutil.Client(t, srv)
	sum3 := func(tx stm.Tx) error {
		n := 0
		for _, k := range []string{"a", "b", "c"} {
			v, err := tx.Get(p + k)
			if err != nil {
				return err
			}
			n += atoi(t, v)
		}
		tx.Put(p+"sum", strconv.Itoa(n))
		return nil
	}

	tap := &txnTap{}
	_, err := stm.Run(t.Context(), tap.client(t), sum3)
	require.NoError(t, err)
	require.Equal(t, 4, tap.count(), "three reads and a commit")

	tap = &txnTap{}
	_, err = stm.Run(t.Context(), tap.client(t), sum3, stm.WithPrefetch(p+"a", p+"b", p+"c"))
	require.NoError(t, err)
	require.Equal(t, 2, tap.count(), "one read and a commit")

	tap = &txnTap{}
	attempts := 0
	res, err := stm.Run(t.Context(), tap.client(t), func(tx stm.Tx) error {
		attempts++
		if attempts == 1 {
			if _, err := tx.Get(p + "a"); err != nil {
				return err
			}
			put(t, other, p+"a", "5")
		}
		return sum3(tx)
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts)
	require.Equal(t, "7", get(t, cli, p+"sum"))
	require.Equal(t, 3+1+2, tap.count(), "first attempt: three reads and a commit; second: one read and a commit")

	// Without a wait, the failed commit returns what the attempt read.
	tap = &txnTap{}
	attempts = 0
	res, err = stm.Run(t.Context(), tap.client(t), func(tx stm.Tx) error {
		attempts++
		if attempts == 1 {
			if _, err := tx.Get(p + "a"); err != nil {
				return err
			}
			put(t, other, p+"a", "6")
		}
		return sum3(tx)
	}, stm.WithBackoff(0, 0))
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts)
	require.Equal(t, "8", get(t, cli, p+"sum"))
	require.Equal(t, 3+1+1, tap.count(), "first attempt: three reads and a commit; second: a commit")

	// A prefetched key that fn does not read is not checked.
	res, err = stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		if _, err := tx.Get(p + "a"); err != nil {
			return err
		}
		put(t, other, p+"b", "9")
		tx.Put(p+"c", "2")
		return nil
	}, stm.WithPrefetch(p+"a", p+"b"))
	require.NoError(t, err)
	require.Equal(t, 1, res.Attempts)
}

// TestUnguardedCommitIsNotResent: under ReadCommitted a commit compares
// nothing, so when its answer is lost it must not be sent again (it would
// apply twice, and silently overwrite a write made in between): Run
// reports ErrUncertain, and the increment is applied once.
func TestUnguardedCommitIsNotResent(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	put(t, cli, p+"n", "0")
	commits := 0
	tap := &txnTap{fault: func(n int, req *pb.TxnRequest, call func() error) error {
		err := call()
		for _, op := range req.Success {
			if op.GetRequestPut() != nil {
				commits++
				return errUnavailable // applied, but the answer is lost
			}
		}
		return err
	}}
	_, err := stm.Run(t.Context(), tap.client(t), incr(p+"n"), stm.WithIsolation(stm.ReadCommitted))
	require.Equal(t, 1, commits, "the commit was sent once")
	require.ErrorIs(t, err, stm.ErrUncertain)
	requireNoStutter(t, err)
	require.Equal(t, "1", get(t, cli, p+"n"), "applied exactly once")
}

// TestResendsRunOut: a commit whose answer never comes back is sent again
// as many times as WithMaxAttempts allows; then Run reports both
// ErrUncertain and ErrTooManyAttempts, in a message that names the
// package once.
func TestResendsRunOut(t *testing.T) {
	t.Parallel()
	_, p := setup(t)
	tap := &txnTap{fault: func(n int, _ *pb.TxnRequest, call func() error) error {
		if n >= 2 {
			return errUnavailable // the commit and every resend never reach etcd
		}
		return call()
	}}
	_, err := stm.Run(t.Context(), tap.client(t), incr(p+"n"), stm.WithMaxAttempts(2), stm.WithBackoff(0, 0))
	require.ErrorIs(t, err, stm.ErrUncertain)
	require.ErrorIs(t, err, stm.ErrTooManyAttempts)
	requireNoStutter(t, err)
}
