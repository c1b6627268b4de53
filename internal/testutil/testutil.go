// Package testutil holds the test scaffolding every coordkit package shares:
// a TestMain that runs the tests against a real etcd and then checks for
// leaked goroutines, and helpers that give each test its own clients,
// sessions and key prefix, checked empty when the test ends.
package testutil

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/session"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/goleak"
)

// Main runs a package's tests against a one-member etcd that it starts
// first, stores in *srv, and stops after the tests and before goleak looks
// for leaked goroutines, so the check needs no Ignore options. Call it from
// TestMain:
//
//	var srv *etcdtest.Cluster
//
//	func TestMain(m *testing.M) { testutil.Main(m, &srv) }
func Main(m *testing.M, srv **etcdtest.Cluster) {
	goleak.VerifyTestMain(withEtcd{m, srv})
}

type withEtcd struct {
	m   *testing.M
	srv **etcdtest.Cluster
}

func (w withEtcd) Run() int {
	c, err := etcdtest.Start(context.Background(), "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*w.srv = c
	code := w.m.Run()
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	settle()
	return code
}

// settle gives goroutines that a stopped etcd member leaves behind for a
// few seconds the time to end before goleak looks. embed.Etcd.Close shuts
// its peer HTTP server down with a 1 s timeout, and etcd's timeoutConn
// resets the read deadline that net/http sets to abort a pending read, so
// a peer connection's goroutines can outlive Close by up to the 5 s read
// timeout (seen after a member lost its leader). goleak retries for only
// about half a second. This waits up to 7 s; a real leak still fails.
func settle() {
	for range 70 {
		if goleak.Find() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns a new client of srv, closed when the test ends. Each
// simulated process in a test should have its own.
func Client(tb testing.TB, srv *etcdtest.Cluster) *clientv3.Client {
	tb.Helper()
	return srv.NewClient(tb)
}

// Session returns a session with the given TTL in seconds on cli, closed
// when the test ends (closing an already expired or closed session is fine).
func Session(tb testing.TB, cli *clientv3.Client, ttl int) *concurrency.Session {
	tb.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		tb.Fatalf("NewSession: %v", err)
	}
	tb.Cleanup(func() {
		s.Close()
		// The session's state (lease tracker, janitor, stream keeper) ends
		// with the session: every goroutine it ran must return.
		if st := session.Lookup(s); st != nil {
			select {
			case <-st.Done():
			case <-time.After(30 * time.Second):
				tb.Errorf("the state of a closed session did not end")
			}
		}
	})
	return s
}

// Prefix returns a key prefix unique to the test, "/test/<name>/", and
// checks when the test ends that nothing is left under it. Call it before
// creating the sessions that write there: cleanups run last-in first-out,
// so the sessions are closed (and their keys deleted) before the check.
func Prefix(tb testing.TB, cli *clientv3.Client) string {
	tb.Helper()
	p := "/test/" + strings.ReplaceAll(tb.Name(), " ", "_") + "/"
	tb.Cleanup(func() { AssertEmpty(tb, cli, p) })
	return p
}

// AssertEmpty fails the test if any key is under prefix. Keys attached to a
// lease that was just revoked are gone at once, so no wait is needed.
func AssertEmpty(tb testing.TB, cli *clientv3.Client, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		tb.Errorf("check %q is empty: %v", prefix, err)
		return
	}
	for _, kv := range resp.Kvs {
		tb.Errorf("key left behind: %s (lease %x)", kv.Key, kv.Lease)
	}
}

// Keys returns the keys under prefix in create-revision order: a line's
// order, first holder first.
func Keys(tb testing.TB, cli *clientv3.Client, prefix string) []string {
	tb.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		tb.Fatalf("Get %q: %v", prefix, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// WaitClosed fails the test if ch is not closed within d. what names the
// channel in the failure.
func WaitClosed(tb testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		tb.Fatalf("%s: not closed after %v", what, d)
	}
}

// Within calls wait, a blocking call with no deadline of its own (wg.Wait,
// cmd.Wait, a receive), and fails the test if it has not returned within
// d, so that a hang is a message naming what, not the go command's
// timeout. Call it from the test's goroutine. If it fails, wait's goroutine
// is left behind: the test has failed already.
func Within(tb testing.TB, d time.Duration, what string, wait func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	select {
	case <-done:
	case <-time.After(d):
		tb.Fatalf("%s: still waiting after %v", what, d)
	}
}
