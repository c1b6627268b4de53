package waitq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }

func TestPrefix(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "jobs", "jobs/"},
		{"trailing slash, as etcd's NewMutex", "jobs/", "jobs//"},
		{"many slashes", "jobs///", "jobs////"},
		{"nested", "/a/b", "/a/b/"},
		{"only slashes", "//", "///"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, waitq.Prefix("x", tt.in))
		})
	}
	require.PanicsWithValue(t, "x: empty name", func() { waitq.Prefix("x", "") })
	require.Panics(t, func() { waitq.Prefix("x", "/") })
}

func TestJoinIsPutIfAbsent(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	resp, fresh, err := w.Join(t.Context(), "v", clientv3.OpGet(pfx, clientv3.WithPrefix(), clientv3.WithCountOnly()))
	require.NoError(t, err)
	require.True(t, fresh)
	require.Equal(t, int64(1), resp.Responses[1].GetResponseRange().Count, "reads run after the put, in the same Txn")
	rev := w.Rev()

	w2 := waitq.New(s, pfx, w.Key())
	_, fresh, err = w2.Join(t.Context(), "v")
	require.NoError(t, err)
	require.False(t, fresh)
	require.Equal(t, rev, w2.Rev(), "an existing key keeps its create revision")
	require.NoError(t, w.Leave(t.Context()))
}

// TestWaitDeleteClosesTheGap deletes the awaited key after it was read and
// before the watch starts: WaitDelete must notice, not wait forever.
func TestWaitDeleteClosesTheGap(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	defer w.Leave(context.Background())

	put, err := cli.Put(t.Context(), pfx+"ahead", "")
	require.NoError(t, err)
	ahead := &mvccpb.KeyValue{Key: []byte(pfx + "ahead"), CreateRevision: put.Header.Revision}
	readRev := put.Header.Revision
	_, err = cli.Delete(t.Context(), pfx+"ahead")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	deletedAt, err := w.WaitDelete(ctx, ahead, readRev)
	require.NoError(t, err, "a key deleted before the watch started must not be waited for")
	require.Zero(t, deletedAt, "a deletion found by a read, not delivered by the watch")
}

func TestWaitDeleteSeesDelete(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	defer w.Leave(context.Background())
	put, err := cli.Put(t.Context(), pfx+"ahead", "")
	require.NoError(t, err)
	ahead := &mvccpb.KeyValue{Key: []byte(pfx + "ahead"), CreateRevision: put.Header.Revision}

	type result struct {
		rev int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		rev, err := w.WaitDelete(t.Context(), ahead, put.Header.Revision)
		got <- result{rev, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("WaitDelete returned %v before the delete", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	del, err := cli.Delete(t.Context(), pfx+"ahead")
	require.NoError(t, err)
	select {
	case r := <-got:
		require.NoError(t, r.err)
		require.Equal(t, del.Header.Revision, r.rev, "the revision of the deletion")
	case <-time.After(10 * time.Second):
		t.Fatal("WaitDelete missed the delete")
	}
}

func TestCheckFailsWithoutOwnKey(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	_, err = w.Check(t.Context())
	require.NoError(t, err)
	_, err = cli.Delete(t.Context(), w.Key())
	require.NoError(t, err)
	_, err = w.Check(t.Context())
	require.ErrorIs(t, err, errs.Lost)
}

func TestFirstWouldWait(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	first := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.NoError(t, first.Acquire(t.Context(), "", waitq.First{Block: false}))
	second := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.ErrorIs(t, second.Acquire(t.Context(), "", waitq.First{Block: false}), waitq.ErrWouldWait)
	resp, err := cli.Get(t.Context(), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.Count, "the second waiter left no key")
	require.NoError(t, first.Leave(t.Context()))
}

// countingClient is a client whose Txn calls are counted: the requests
// and their answers are real, the count tells which path CheckSince took.
func countingClient(t *testing.T) (*clientv3.Client, *atomic.Int64) {
	cli, txns, _ := countingClients(t)
	return cli, txns
}

// countingClients is countingClient that also counts the gRPC streams the
// client opens for watches.
func countingClients(t *testing.T) (cli *clientv3.Client, txns, watchStreams *atomic.Int64) {
	cli, c := testutil.CountedClient(t, srv)
	return cli, &c.Txns, &c.Streams
}

// TestWaitsShareOneStream: one wait after another on a session reuse one
// gRPC watch stream, which the session's keeper holds open between waits.
func TestWaitsShareOneStream(t *testing.T) {
	t.Parallel()
	cli, _, streams := countingClients(t)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	defer w.Leave(context.Background())
	for i := range 5 {
		put, err := cli.Put(t.Context(), pfx+"ahead", "")
		require.NoError(t, err)
		ahead := &mvccpb.KeyValue{Key: []byte(pfx + "ahead"), CreateRevision: put.Header.Revision}
		got := make(chan error, 1)
		go func() {
			_, err := w.WaitDelete(t.Context(), ahead, put.Header.Revision)
			got <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the watch start (or not: the gap read covers it)
		_, err = cli.Delete(t.Context(), pfx+"ahead")
		require.NoError(t, err)
		require.NoError(t, <-got, "wait %d", i)
	}
	require.Equal(t, int64(1), streams.Load(), "five waits, one watch stream")
}

func TestCheckSince(t *testing.T) {
	t.Parallel()
	cli, txns := countingClient(t)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	put, err := cli.Put(t.Context(), pfx+"other", "x")
	require.NoError(t, err)

	// A member that has applied minRev answers at once, serializably.
	txns.Store(0)
	resp, err := w.CheckSince(t.Context(), put.Header.Revision, pfx+"other")
	require.NoError(t, err)
	require.Equal(t, int64(1), txns.Load(), "one serializable round trip")
	require.GreaterOrEqual(t, resp.Header.Revision, put.Header.Revision)
	require.Equal(t, "x", string(resp.Responses[0].GetResponseRange().Kvs[0].Value))

	// One that shows a revision older than minRev (here: minRev is in the
	// future) is not trusted: the read is made again, linearizably.
	txns.Store(0)
	resp, err = w.CheckSince(t.Context(), put.Header.Revision+1000, pfx+"other")
	require.NoError(t, err)
	require.Equal(t, int64(2), txns.Load(), "the serializable answer was set aside")
	require.Equal(t, "x", string(resp.Responses[0].GetResponseRange().Kvs[0].Value))

	// Without the waiter's key, the linearizable read decides why.
	_, err = cli.Delete(t.Context(), w.Key())
	require.NoError(t, err)
	txns.Store(0)
	_, err = w.CheckSince(t.Context(), put.Header.Revision, pfx+"other")
	require.ErrorIs(t, err, errs.Lost)
	require.Equal(t, int64(2), txns.Load(), "a missing key is confirmed linearizably")
	_, err = cli.Delete(t.Context(), pfx+"other")
	require.NoError(t, err)
}

// TestFirstUncontendedIsOneTxn: an empty line is decided by the
// Join alone, and a line with someone in it is joined behind them.
func TestFirstUncontendedIsOneTxn(t *testing.T) {
	t.Parallel()
	cli, txns := countingClient(t)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	first := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.NoError(t, first.Acquire(t.Context(), "", waitq.First{Block: false})) // the lease tracker's first probe
	require.NoError(t, first.Leave(t.Context()))

	txns.Store(0)
	require.NoError(t, first.Acquire(t.Context(), "", waitq.First{}))
	require.Equal(t, int64(1), txns.Load(), "an uncontended acquisition is one Txn")

	second := waitq.New(s, pfx, waitq.Key(pfx, s))
	done := make(chan error, 1)
	go func() { done <- second.Acquire(t.Context(), "", waitq.First{Block: true}) }()
	require.Eventually(t, func() bool {
		resp, err := cli.Get(t.Context(), second.Key())
		return err == nil && len(resp.Kvs) == 1
	}, 10*time.Second, 10*time.Millisecond, "the second waiter joins the line")
	select {
	case err := <-done:
		t.Fatalf("second acquired while first held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, first.Leave(t.Context()))
	require.NoError(t, <-done)
	require.Greater(t, second.Rev(), first.Rev())
	require.NoError(t, second.Leave(t.Context()))
}

// TestAbandonedJoinLandingLate: a Join cut short by its context may be
// applied after Abandon's delete (a request held up by a paused leader,
// chaos L5). The session's janitor deletes the key when it shows up.
func TestAbandonedJoinLandingLate(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	// Abandon runs first: its delete finds nothing.
	require.NoError(t, w.Abandon(t.Context()))
	require.True(t, w.Abandoned())
	// Then the Join lands.
	_, err := cli.Put(t.Context(), w.Key(), "", clientv3.WithLease(s.Lease()))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := cli.Get(t.Context(), w.Key(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 0
	}, 10*time.Second, 20*time.Millisecond, "the late Join's key is deleted by the janitor")
}

// TestStaleKeyReplacedOnSlowEtcd joins with a key left over from an earlier
// hold while etcd takes longer than CleanupTimeout to answer. Replacing the
// key is a step of the acquisition, bounded by the caller's context: the
// acquisition must succeed with a new incarnation of the key, never fail
// with a DeadlineExceeded the caller did not set (chaos L5 saw Lock return
// one after 2 s under a 15 s deadline).
func TestStaleKeyReplacedOnSlowEtcd(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	direct := testutil.Client(t, own)
	pfx := testutil.Prefix(t, direct)
	s := testutil.Session(t, own.ProxyClient(t, 0), 60)
	key := waitq.Key(pfx, s)
	stale, err := direct.Put(t.Context(), key, "", clientv3.WithLease(s.Lease()))
	require.NoError(t, err)

	// Each request takes 2.1 s or more (the proxy may delay a reply in two
	// parts): longer than CleanupTimeout and than a first attempt (2 s), so
	// the acquisition also has to grow its attempts (Retrying) to finish.
	own.Member(0).DelayResponses(waitq.CleanupTimeout+100*time.Millisecond, 0)
	w := waitq.New(s, pfx, key)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	err = w.Acquire(ctx, "", waitq.First{Block: true})
	own.Member(0).Undelay()
	require.NoError(t, err, "a slow etcd must not fail the acquisition while its context lasts")
	require.Greater(t, w.Rev(), stale.Header.Revision, "the stale key is replaced, not reused")
	// Replies delayed before Undelay may still be queued in the proxy, so
	// Leave may run out of its own time; then the janitor deletes the key.
	w.Leave(t.Context())
	require.Eventually(t, func() bool { return len(testutil.Keys(t, direct, pfx)) == 0 },
		15*time.Second, 20*time.Millisecond, "the key is deleted, by Leave or by the janitor")
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"request timed out", rpctypes.ErrTimeout, true},
		{"leader changed", rpctypes.ErrLeaderChanged, true},
		{"no leader", rpctypes.ErrNoLeader, true},
		{"grpc unavailable", status.Error(codes.Unavailable, "connection refused"), true},
		{"wrapped", fmt.Errorf("step: %w", rpctypes.ErrTimeout), true},
		{"lease not found", rpctypes.ErrLeaseNotFound, false},
		{"ctx deadline", context.DeadlineExceeded, false},
		{"ctx cancelled", context.Canceled, false},
		{"lost", errs.Lost, false},
		{"too many requests", rpctypes.ErrTooManyRequests, true},
		{"no space", rpctypes.ErrNoSpace, false},
		{"no answer", fmt.Errorf("%w within 2s", errs.NoAnswer), true},
		{"grpc deadline exceeded, context alive", status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL"), true},
		{"grpc resource exhausted", status.Error(codes.ResourceExhausted, "server overloaded"), true},
		{"message too large", status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (3000000 vs. 2097152)"), false},
		{"grpc canceled", status.Error(codes.Canceled, "context canceled"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, waitq.Transient(tt.err))
		})
	}
}

// TestRetryingOverload: a step that fails with what an overloaded etcd
// gives while the caller's context lives (a request's deadline passed just
// before its context's timer fired, reported by gRPC as a DeadlineExceeded
// status, or a ResourceExhausted) is tried again, not returned.
func TestRetryingOverload(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 60)
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	for _, fault := range []error{
		status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL"),
		status.Error(codes.ResourceExhausted, "server overloaded"),
	} {
		calls := 0
		err := w.Retrying(context.Background(), nil, func(context.Context) error {
			if calls++; calls == 1 {
				return fault
			}
			return nil
		})
		require.NoError(t, err, "Retrying after %v", fault)
		require.Equal(t, 2, calls, "attempts after %v", fault)
	}
}
