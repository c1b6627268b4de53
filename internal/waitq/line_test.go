package waitq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// TestLongLine: a line longer than the joining Txn reads is waited on
// whole. The keys ahead are named so that key order is the reverse of
// their order in line, so the first keys in key order, which the Join
// reads, are the oldest: the key just ahead is not among them. They are
// deleted one at a time in random order, and the waiter is admitted only
// after the last. Every Txn that writes reads at most LineRead keys, in key
// order, unfiltered: the only read etcd stops at its limit, so a Txn run in
// etcd's apply loop costs no copy of a long line.
func TestLongLine(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bad []string
	check := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if txn, ok := req.(*pb.TxnRequest); ok {
			if why := unboundedWriteTxn(txn); why != "" {
				mu.Lock()
				bad = append(bad, why)
				mu.Unlock()
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   srv.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(check)},
	})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	pfx := testutil.Prefix(t, cli)

	n := waitq.LineRead + 6
	ahead := make([]string, n)
	for i := range n {
		ahead[i] = fmt.Sprintf("%sz%04d", pfx, n-i) // the oldest sorts last
		_, err := cli.Put(t.Context(), ahead[i], "")
		require.NoError(t, err)
	}
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	done := make(chan error, 1)
	go func() { done <- w.Acquire(t.Context(), "", waitq.First{Block: true}) }()
	require.Eventually(t, func() bool {
		resp, err := cli.Get(t.Context(), w.Key())
		return err == nil && len(resp.Kvs) == 1
	}, 10*time.Second, 10*time.Millisecond, "the waiter joins the line")

	for i, j := range rand.Perm(n) {
		select {
		case err := <-done:
			t.Fatalf("admitted with %d keys ahead: %v", n-i, err)
		case <-time.After(5 * time.Millisecond):
		}
		_, err := cli.Delete(t.Context(), ahead[j])
		require.NoError(t, err)
	}
	testutil.Within(t, 10*time.Second, "the waiter is admitted once the line ahead is gone", func() {
		require.NoError(t, <-done)
	})
	require.NoError(t, w.Leave(t.Context()))
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad, "Txns that write and read more than the line's first keys")
}

// TestTryOnLongLine: a waiter that must not wait, behind a line longer than
// the Join reads, returns ErrWouldWait and leaves nothing behind.
func TestTryOnLongLine(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	for i := range waitq.LineRead + 1 {
		_, err := cli.Put(t.Context(), fmt.Sprintf("%sz%04d", pfx, i), "")
		require.NoError(t, err)
	}
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.ErrorIs(t, w.Acquire(t.Context(), "", waitq.First{}), waitq.ErrWouldWait)
	resp, err := cli.Get(t.Context(), w.Key())
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "the waiter's key is deleted")
	_, err = cli.Delete(t.Context(), pfx, clientv3.WithPrefix())
	require.NoError(t, err)
}

// unboundedWriteTxn says what is wrong with txn if it writes and reads a
// range that etcd would copy out whole: no limit, or a sort or filter that
// makes etcd drop the limit. "" if nothing is.
func unboundedWriteTxn(txn *pb.TxnRequest) string {
	writes := false
	var ranges []*pb.RangeRequest
	for _, ops := range [][]*pb.RequestOp{txn.Success, txn.Failure} {
		for _, op := range ops {
			switch {
			case op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil:
				writes = true
			case op.GetRequestRange() != nil:
				ranges = append(ranges, op.GetRequestRange())
			}
		}
	}
	if !writes {
		return ""
	}
	for _, r := range ranges {
		if len(r.RangeEnd) == 0 {
			continue // one key
		}
		if r.Limit == 0 || r.Limit > waitq.LineRead || r.SortOrder != pb.RangeRequest_NONE ||
			r.MaxCreateRevision != 0 || r.MinCreateRevision != 0 || r.MaxModRevision != 0 || r.MinModRevision != 0 {
			return fmt.Sprintf("range %q..%q limit %d sort %v/%v", r.Key, r.RangeEnd, r.Limit, r.SortTarget, r.SortOrder)
		}
	}
	for _, c := range txn.Compare {
		if len(c.RangeEnd) != 0 {
			return fmt.Sprintf("compare over range %q..%q", c.Key, c.RangeEnd)
		}
	}
	return ""
}
