package waitq_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// roomCountingKV counts the transactions a client sends.
type roomCountingKV struct {
	clientv3.KV
	txns atomic.Int64
}

func (c *roomCountingKV) Txn(ctx context.Context) clientv3.Txn {
	c.txns.Add(1)
	return c.KV.Txn(ctx)
}

// weigh reads a test key's weight from its value.
func roomWeigh(kv *mvccpb.KeyValue) int64 {
	n, _ := strconv.ParseInt(string(kv.Value), 10, 64)
	return n
}

// join puts a waiter with weight n in line under prefix, and returns it
// with the keys ahead of it and the revision they were read at.
func roomJoin(t *testing.T, s *concurrency.Session, prefix string, n int) (*waitq.Waiter, []*mvccpb.KeyValue, int64) {
	t.Helper()
	w := waitq.New(s, prefix, waitq.Key(prefix, s))
	resp, fresh, err := w.Join(t.Context(), strconv.Itoa(n), clientv3.OpGet(prefix, clientv3.WithPrefix()))
	require.NoError(t, err)
	require.True(t, fresh)
	return w, resp.Responses[1].GetResponseRange().Kvs, resp.Header.Revision
}

// waitRoom runs WaitRoom in the background.
func roomWait(ctx context.Context, w *waitq.Waiter, ahead []*mvccpb.KeyValue, rev, room int64) <-chan error {
	got := make(chan error, 1)
	go func() { got <- w.WaitRoom(ctx, ahead, rev, room, roomWeigh) }()
	return got
}

func roomPending(t *testing.T, got <-chan error, what string) {
	t.Helper()
	select {
	case err := <-got:
		t.Fatalf("%s: WaitRoom returned %v, want it to wait", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

func roomReturned(t *testing.T, got <-chan error) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("WaitRoom did not return")
		return nil
	}
}

func TestWaitRoom(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	base := testutil.Prefix(t, cli)

	// Releases ahead are counted from watch events: however many there
	// are, the waiter makes one round trip, the guarded read that confirms
	// room. Releases behind it do not count.
	t.Run("counts releases locally", func(t *testing.T) {
		wcli := testutil.Client(t, srv)
		kv := &roomCountingKV{KV: wcli.KV}
		wcli.KV = kv
		s := testutil.Session(t, wcli, 10)
		pfx := base + "count/"
		var ahead []string
		for _, n := range []string{"1", "2", "1", "1"} {
			k := pfx + "a" + strconv.Itoa(len(ahead))
			_, err := cli.Put(t.Context(), k, n)
			require.NoError(t, err)
			ahead = append(ahead, k)
		}
		t.Cleanup(func() { cli.Delete(context.Background(), pfx, clientv3.WithPrefix()) })
		w, kvs, rev := roomJoin(t, s, pfx, 1)
		got := roomWait(t.Context(), w, kvs, rev, 1) // weight 5 ahead, room for 1
		// Counted once the watch is in place: if other tests moved the store
		// since the Join's read, one more read has closed that gap.
		roomPending(t, got, "weight ahead above room")
		before := kv.txns.Load()
		_, err := cli.Put(t.Context(), pfx+"behind", "3")
		require.NoError(t, err)
		for _, k := range ahead[:3] {
			roomPending(t, got, "weight ahead above room")
			_, err := cli.Delete(t.Context(), k)
			require.NoError(t, err)
		}
		_, err = cli.Delete(t.Context(), pfx+"behind")
		require.NoError(t, err)
		require.NoError(t, roomReturned(t, got), "weight 1 ahead, room for 1")
		require.Equal(t, int64(1), kv.txns.Load()-before, "round trips while waiting")
		require.NoError(t, w.Leave(t.Context()))
		_, err = cli.Delete(t.Context(), ahead[3])
		require.NoError(t, err)
	})

	// The keys ahead go between the read and the watch: the watch's created
	// revision shows the store moved, and a read closes the gap at once.
	t.Run("read-watch gap", func(t *testing.T) {
		s := testutil.Session(t, testutil.Client(t, srv), 10)
		pfx := base + "gap/"
		_, err := cli.Put(t.Context(), pfx+"a", "2")
		require.NoError(t, err)
		w, kvs, rev := roomJoin(t, s, pfx, 1)
		_, err = cli.Delete(t.Context(), pfx+"a")
		require.NoError(t, err)
		require.NoError(t, roomReturned(t, roomWait(t.Context(), w, kvs, rev, 0)))
		require.NoError(t, w.Leave(t.Context()))
	})

	// A waiter whose key goes never gets in: deleted by someone else, it
	// is lost; with its lease revoked, its session expired.
	t.Run("own key gone", func(t *testing.T) {
		pfx := base + "gone/"
		_, err := cli.Put(t.Context(), pfx+"a", "1")
		require.NoError(t, err)
		s := testutil.Session(t, testutil.Client(t, srv), 10)
		w, kvs, rev := roomJoin(t, s, pfx, 1)
		got := roomWait(t.Context(), w, kvs, rev, 0)
		roomPending(t, got, "before the delete")
		_, err = cli.Delete(t.Context(), w.Key())
		require.NoError(t, err)
		require.ErrorIs(t, roomReturned(t, got), errs.Lost)

		s = testutil.Session(t, testutil.Client(t, srv), 10)
		w, kvs, rev = roomJoin(t, s, pfx, 1)
		got = roomWait(t.Context(), w, kvs, rev, 0)
		roomPending(t, got, "before the revoke")
		_, err = cli.Revoke(t.Context(), s.Lease())
		require.NoError(t, err)
		require.ErrorIs(t, roomReturned(t, got), errs.SessionExpired)

		// Revoked before the wait starts: the read that closes the gap finds
		// the key gone, and tells why.
		s = testutil.Session(t, testutil.Client(t, srv), 10)
		w, kvs, rev = roomJoin(t, s, pfx, 1)
		_, err = cli.Revoke(t.Context(), s.Lease())
		require.NoError(t, err)
		require.ErrorIs(t, roomReturned(t, roomWait(t.Context(), w, kvs, rev, 0)), errs.SessionExpired)
		_, err = cli.Delete(t.Context(), pfx+"a")
		require.NoError(t, err)
	})

	t.Run("context", func(t *testing.T) {
		pfx := base + "ctx/"
		_, err := cli.Put(t.Context(), pfx+"a", "1")
		require.NoError(t, err)
		s := testutil.Session(t, testutil.Client(t, srv), 10)
		w, kvs, rev := roomJoin(t, s, pfx, 1)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, roomReturned(t, roomWait(ctx, w, kvs, rev, 0)), context.DeadlineExceeded)
		require.NoError(t, w.Leave(t.Context()))
		_, err = cli.Delete(t.Context(), pfx+"a")
		require.NoError(t, err)
	})
}

// TestWaitRoomAfterCompaction cuts the waiter's connection while the key
// ahead goes and the history is compacted. When the client reconnects, its
// watch resumes from a compacted revision and is cancelled; the waiter must
// read the line again rather than wait forever.
func TestWaitRoomAfterCompaction(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t) // its own: compaction would disturb other tests
	cli := es.Client()
	link := newCutter(t, strings.TrimPrefix(es.Member(0).Endpoint(), "http://"))
	wcli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + link.addr()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { wcli.Close() })
	kv := &roomCountingKV{KV: wcli.KV}
	wcli.KV = kv
	s := testutil.Session(t, wcli, 10)
	const pfx = "/compact/"
	_, err = cli.Put(t.Context(), pfx+"a", "1")
	require.NoError(t, err)
	w, kvs, rev := roomJoin(t, s, pfx, 1)
	before := kv.txns.Load()
	got := roomWait(t.Context(), w, kvs, rev, 0)
	roomPending(t, got, "before the release")

	link.cut()
	_, err = cli.Delete(t.Context(), pfx+"a")
	require.NoError(t, err)
	_, err = es.Compact(t.Context())
	require.NoError(t, err)
	link.heal()
	require.NoError(t, roomReturned(t, got))
	require.GreaterOrEqual(t, kv.txns.Load()-before, int64(1), "admitted only after reading the line again")
	require.NoError(t, w.Leave(t.Context()))
}

// cutter forwards TCP connections to an address until cut, which closes
// them all and refuses new ones until heal.
type cutter struct {
	ln net.Listener
	to string
	wg sync.WaitGroup

	mu     sync.Mutex // guards broken, conns
	broken bool
	conns  map[net.Conn]bool
}

func newCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, to: to, conns: map[net.Conn]bool{}}
	c.wg.Go(c.accept)
	t.Cleanup(func() {
		ln.Close()
		c.cut()
		c.wg.Wait()
	})
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

func (c *cutter) accept() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", c.to)
		if err != nil {
			in.Close()
			continue
		}
		c.mu.Lock()
		if c.broken {
			in.Close()
			out.Close()
			c.mu.Unlock()
			continue
		}
		c.conns[in], c.conns[out] = true, true
		c.mu.Unlock()
		for _, p := range [][2]net.Conn{{in, out}, {out, in}} {
			c.wg.Go(func() {
				io.Copy(p[0], p[1])
				p[0].Close()
				p[1].Close()
			})
		}
	}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = true
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

func (c *cutter) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = false
}
