package waitq_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }

func TestPrefix(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "jobs", "jobs/"},
		{"trailing slash", "jobs/", "jobs/"},
		{"many slashes", "jobs///", "jobs/"},
		{"nested", "/a/b", "/a/b/"},
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
	rev := w.Rev

	w2 := waitq.New(s, pfx, w.Key)
	_, fresh, err = w2.Join(t.Context(), "v")
	require.NoError(t, err)
	require.False(t, fresh)
	require.Equal(t, rev, w2.Rev, "an existing key keeps its create revision")
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
	require.NoError(t, w.WaitDelete(ctx, ahead, readRev), "a key deleted before the watch started must not be waited for")
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

	got := make(chan error, 1)
	go func() { got <- w.WaitDelete(t.Context(), ahead, put.Header.Revision) }()
	select {
	case err := <-got:
		t.Fatalf("WaitDelete returned %v before the delete", err)
	case <-time.After(200 * time.Millisecond):
	}
	_, err = cli.Delete(t.Context(), pfx+"ahead")
	require.NoError(t, err)
	select {
	case err := <-got:
		require.NoError(t, err)
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
	_, err = cli.Delete(t.Context(), w.Key)
	require.NoError(t, err)
	_, err = w.Check(t.Context())
	require.ErrorIs(t, err, errs.Lost)
}

func TestAcquireFirstWouldWait(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	first := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.NoError(t, first.AcquireFirst(t.Context(), "", false))
	second := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.ErrorIs(t, second.AcquireFirst(t.Context(), "", false), waitq.ErrWouldWait)
	resp, err := cli.Get(t.Context(), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.Count, "the second waiter left no key")
	require.NoError(t, first.Leave(t.Context()))
}
