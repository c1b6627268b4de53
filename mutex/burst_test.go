package mutex_test

import (
	"context"
	"flag"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/session"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// burst is how many waiters TestBurst puts on one lock. The default keeps
// CI fast and still takes every step of a burst; the figures need
// thousands: go test -run TestBurst ./mutex -burst 5000.
var burst = flag.Int("burst", 50, "waiters that TestBurst puts on one lock at once")

// burstSessions creates n sessions on cli, a few at a time, closed when the
// test ends. Each waiter of a burst has its own, as a fleet's hosts have.
func burstSessions(t *testing.T, cli *clientv3.Client, n int) []*concurrency.Session {
	t.Helper()
	ss := make([]*concurrency.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ss[i], errs[i] = concurrency.NewSession(cli)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range ss {
			if s != nil {
				wg.Go(func() {
					s.Close()
					if st := session.Lookup(s); st != nil {
						st.Wait()
					}
				})
			}
		}
		testutil.Within(t, 5*time.Minute, "closing the burst's sessions", wg.Wait)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("NewSession %d of %d: %v", i, n, err)
		}
	}
	// The etcd client ends a session whose first keep-alive is not answered
	// within its dial timeout plus a second, a rule for new sessions only,
	// and a burst of thousands delays those answers past it. A fleet's
	// sessions are older than its burst: wait out that first deadline (its
	// check runs every second); then every session still alive has had its
	// answer. A burst of hundreds answers them within milliseconds.
	if n <= 1000 {
		return ss
	}
	time.Sleep(firstKeepAliveDeadline + 2*time.Second)
	for i, s := range ss {
		select {
		case <-s.Done():
			t.Fatalf("session %d of %d ended before the burst: its first keep-alive was not answered in time", i, n)
		default:
		}
	}
	return ss
}

// firstKeepAliveDeadline is how long the etcd client waits for a new
// session's first keep-alive answer: testutil.Client's dial timeout plus a
// second.
const firstKeepAliveDeadline = 6 * time.Second

// TestBurst: a burst of waiters, each on its own session, all on one
// client, all calling Lock with a context that never ends while one holder
// holds the lock. Every Lock succeeds (none sees a bound of a request
// that coordkit or gRPC set, however loaded etcd is), and the line drains
// in FIFO order: each holder's fencing token is larger than the last.
func TestBurst(t *testing.T) {
	n := *burst
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 60), pfx+"lock")
	require.NoError(t, holder.Lock(t.Context()))
	ss := burstSessions(t, cli, n)

	var (
		mu     sync.Mutex // guards tokens
		tokens []int64    // in the order the waiters held the lock
	)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	// ctx ends only when the test does (so that a failed test does not
	// leave thousands of waiters behind): for the test's whole run, it is
	// a context that never ends.
	ctx, stop := context.WithCancel(context.Background())
	start := time.Now()
	for _, s := range ss {
		m := mutex.New(s, pfx+"lock")
		wg.Go(func() {
			if err := m.Lock(ctx); err != nil {
				errc <- err
				return
			}
			mu.Lock()
			tokens = append(tokens, m.Token())
			mu.Unlock()
			errc <- m.Unlock(ctx)
		})
	}
	t.Cleanup(func() {
		stop()
		testutil.Within(t, 10*time.Minute, "the waiters return", wg.Wait)
	})

	// All joined: the holder's key and n waiters' are in line (besides the
	// slot of the line's tail, which is not a waiter).
	deadline := time.After(10 * time.Minute)
	lock := pfx + "lock/"
	for {
		resp, err := cli.Get(t.Context(), lock, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		require.NoError(t, err)
		in := slices.DeleteFunc(resp.Kvs, func(kv *mvccpb.KeyValue) bool { return waitq.IsTail(lock, string(kv.Key)) })
		if len(in) == n+1 {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("%v after the burst began, with %d of %d joined, a waiter's Lock or Unlock = %v", time.Since(start).Round(time.Millisecond), len(in)-1, n, err)
		case <-deadline:
			t.Fatalf("%d of %d waiters joined within 10 minutes", len(in)-1, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	joined := time.Since(start)

	drain := time.Now()
	require.NoError(t, holder.Unlock(t.Context()))
	failed := 0
	for range n {
		select {
		case err := <-errc:
			if err != nil {
				failed++
				if failed <= 5 {
					t.Errorf("Lock or Unlock with a context that never ends = %v", err)
				}
			}
		case <-deadline:
			t.Fatalf("the line did not drain within 10 minutes")
		}
	}
	drained := time.Since(drain)
	t.Logf("N=%d: all joined in %v; drained in %v (%.0f handoffs/s); %d errors",
		n, joined.Round(time.Millisecond), drained.Round(time.Millisecond), float64(n)/drained.Seconds(), failed)
	require.Zero(t, failed, "errors")
	require.Len(t, tokens, n)
	require.True(t, slices.IsSorted(tokens), "holders' tokens in the order they held the lock are not increasing: the line was not FIFO")
	require.Len(t, slices.Compact(tokens), n, "two holders shared a token")
}
