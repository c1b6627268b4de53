package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/holds"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// serve starts the console on a test server.
func serve(t testing.TB, cli *clientv3.Client, opts ...console.Option) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(console.Handler(cli, opts...))
	t.Cleanup(ts.Close)
	return ts
}

// cleanKeys deletes what the test wrote under prefix with no lease
// (configs), before testutil.Prefix checks that nothing is left.
func cleanKeys(t testing.TB, cli *clientv3.Client, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			t.Errorf("delete %s: %v", prefix, err)
		}
	})
}

// hold takes the lock name on a session of its own, with lockctl's holder
// value, and returns the session, which the test closes at cleanup.
func hold(t testing.TB, cli *clientv3.Client, name, host string) *mutex.Mutex {
	t.Helper()
	s := testutil.Session(t, cli, 30)
	v, _ := json.Marshal(holds.HolderInfo{Host: host, PID: 4242, Program: "report.sh", Since: time.Now().UTC().Format(time.RFC3339)})
	m := mutex.New(s, name, mutex.WithValue(string(v)))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Lock(ctx); err != nil {
		t.Fatalf("Lock(%s) = %v", name, err)
	}
	return m
}

// wait queues for the lock name in a goroutine that the test's cleanup
// ends and awaits, and returns once its key is in etcd.
func wait(t testing.TB, cli *clientv3.Client, name, host string) {
	t.Helper()
	s := testutil.Session(t, cli, 30)
	v, _ := json.Marshal(holds.HolderInfo{Host: host, PID: 4343, Program: "wait.sh", Since: time.Now().UTC().Format(time.RFC3339)})
	m := mutex.New(s, name, mutex.WithValue(string(v)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Lock(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err == nil {
			_ = m.Unlock(context.Background())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, err := holds.Entries(t.Context(), cli, name+"/")
		if err == nil && len(es) >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter for %s never queued: %v %v", name, es, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t testing.TB, ts *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t testing.TB, ts *httptest.Server, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := ts.Client().PostForm(ts.URL+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" (?:value|content)="([0-9a-f]+)"`)

// csrf reads the handler's token from a page that carries a form.
func csrf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token in the page:\n%s", body)
	}
	return m[1]
}

// nextEvent reads the SSE stream until a change event and returns its data.
func nextEvent(r *bufio.Reader) (string, error) {
	event := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "change":
			return strings.TrimPrefix(line, "data: "), nil
		case line == "":
			event = ""
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func hex(n int64) string { return strconv.FormatInt(n, 16) }
