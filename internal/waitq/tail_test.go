package waitq_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestTail: once a waiter finds its line longer than LineRead, it starts
// the line's tail, and the waiters after it join through it: each one's
// slot replaces the last, names it, and has its create revision and lease.
// The line still drains in order, each waiter is admitted only once all
// ahead of it are gone, and the last release leaves no slot behind.
func TestTail(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	var fill []string
	for i := range waitq.LineRead {
		fill = append(fill, fmt.Sprintf("%sfill%03d", pfx, i))
		_, err := cli.Put(t.Context(), fill[i], "")
		require.NoError(t, err)
	}
	// slot reads both slots of the tail at one revision: at most one
	// exists. It returns the one that does ("" if none).
	slot := func() (key, value string, create, lease int64, n int) {
		tk := waitq.TailKeys(pfx)
		resp, err := cli.Txn(t.Context()).Then(clientv3.OpGet(tk[0]), clientv3.OpGet(tk[1])).Commit()
		if err != nil {
			t.Errorf("reading the tail: %v", err)
			return
		}
		for i, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				n++
				key, value, create, lease = tk[i], string(kv.Value), kv.CreateRevision, kv.Lease
			}
		}
		return key, value, create, lease, n
	}

	type waiter struct {
		w    *waitq.Waiter
		s    *concurrency.Session
		done chan error
	}
	join := func() waiter {
		s := testutil.Session(t, cli, 10)
		w := waitq.New(s, pfx, waitq.Key(pfx, s), waitq.Tail())
		done := make(chan error, 1)
		go func() { done <- w.Acquire(t.Context(), "", waitq.First{Block: true}) }()
		require.Eventually(t, func() bool {
			_, v, _, _, n := slot()
			return v == w.Key() && n == 1
		}, 10*time.Second, 5*time.Millisecond, "one slot, which names the waiter that joined last")
		return waiter{w, s, done}
	}
	ws := []waiter{join(), join(), join()}
	_, _, create, lease, _ := slot()
	require.Equal(t, ws[2].w.Rev(), create, "a slot made as its waiter joined has the waiter's create revision")
	require.Equal(t, int64(ws[2].s.Lease()), lease, "and its lease")

	for _, k := range fill {
		_, err := cli.Delete(t.Context(), k)
		require.NoError(t, err)
	}
	for i, w := range ws {
		testutil.Within(t, 10*time.Second, fmt.Sprintf("waiter %d is admitted", i), func() { require.NoError(t, <-w.done) })
		for _, later := range ws[i+1:] {
			select {
			case err := <-later.done:
				t.Fatalf("a later waiter was admitted while waiter %d held: %v", i, err)
			default:
			}
		}
		_, err := w.w.Release(t.Context())
		require.NoError(t, err)
	}
	_, _, _, _, n := slot()
	require.Zero(t, n, "the last release deletes the slot that names it")
	require.Empty(t, testutil.Keys(t, cli, pfx))
}

// TestTailWithEtcdMutex: etcd's Mutex, which takes the tail's slot for one
// more waiter, waits behind coordkit waiters that joined through the tail
// and gets the lock after them, and those that join after it wait for it:
// nobody waits forever on a slot.
func TestTailWithEtcdMutex(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	for i := range waitq.LineRead {
		_, err := cli.Put(t.Context(), fmt.Sprintf("%sfill%03d", pfx, i), "")
		require.NoError(t, err)
	}
	var order []string
	acquired := make(chan string, 4)
	ours := func(name string) *waitq.Waiter {
		s := testutil.Session(t, cli, 10)
		w := waitq.New(s, pfx, waitq.Key(pfx, s), waitq.Tail())
		go func() {
			if err := w.Acquire(t.Context(), "", waitq.First{Block: true}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			acquired <- name
		}()
		require.Eventually(t, func() bool {
			resp, err := cli.Get(t.Context(), w.Key())
			return err == nil && len(resp.Kvs) == 1
		}, 10*time.Second, 5*time.Millisecond, "%s joins", name)
		return w
	}
	a, b := ours("a"), ours("b")
	es := testutil.Session(t, cli, 10)
	em := concurrency.NewMutex(es, strings.TrimSuffix(pfx, "/")) // etcd adds the "/"
	go func() {
		if err := em.Lock(t.Context()); err != nil {
			t.Errorf("etcd: %v", err)
		}
		acquired <- "etcd"
	}()
	require.Eventually(t, func() bool {
		resp, err := cli.Get(t.Context(), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == int64(waitq.LineRead)+4 // fill, a, b, etcd's, the slot
	}, 10*time.Second, 5*time.Millisecond, "etcd's Mutex joins")
	c := ours("c")

	_, err := cli.Delete(t.Context(), pfx+"fill", clientv3.WithPrefix())
	require.NoError(t, err)
	release := map[string]func() error{
		"a":    func() error { _, err := a.Release(t.Context()); return err },
		"b":    func() error { _, err := b.Release(t.Context()); return err },
		"c":    func() error { _, err := c.Release(t.Context()); return err },
		"etcd": func() error { return em.Unlock(t.Context()) },
	}
	for range 4 {
		testutil.Within(t, 10*time.Second, "the next in line acquires", func() {
			name := <-acquired
			order = append(order, name)
			require.NoError(t, release[name]())
		})
	}
	require.Equal(t, []string{"a", "b", "etcd", "c"}, order)
	require.Empty(t, testutil.Keys(t, cli, pfx))
}
