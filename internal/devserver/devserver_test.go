package devserver_test

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/devserver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is written by Run's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServesUntilCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	code := make(chan int, 1)
	go func() { code <- devserver.Run(ctx, []string{"--listen", addr}, &out, &out) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "etcd ready") {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("Run = %d, want 0\n%s", c, out.String())
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	if c := devserver.Run(t.Context(), []string{"--nope"}, &out, &out); c != devserver.ExitUsage {
		t.Fatalf("Run = %d, want %d", c, devserver.ExitUsage)
	}
	if c := devserver.Run(t.Context(), []string{"extra"}, &out, &out); c != devserver.ExitUsage {
		t.Fatalf("Run = %d, want %d", c, devserver.ExitUsage)
	}
	if c := devserver.Run(t.Context(), []string{"--help"}, &out, &out); c != 0 {
		t.Fatalf("Run(--help) = %d, want 0", c)
	}
}

// TestPortZero: --listen with port 0 serves on a port the kernel picks, and
// the ready line names that port, so a script can use it.
func TestPortZero(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	code := make(chan int, 1)
	go func() { code <- devserver.Run(ctx, []string{"--listen", "127.0.0.1:0"}, &out, &out) }()
	defer func() {
		cancel()
		if c := <-code; c != 0 {
			t.Errorf("Run = %d, want 0\n%s", c, out.String())
		}
	}()
	re := regexp.MustCompile(`etcd ready at (http://127\.0\.0\.1:(\d+))`)
	deadline := time.Now().Add(30 * time.Second)
	var m []string
	for m = re.FindStringSubmatch(out.String()); m == nil; m = re.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m[2] == "0" {
		t.Fatalf("ready line names port 0: %s", out.String())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
}

// TestCannotStart: an address that is taken ends Run with ExitCannotStart
// and a message naming the address.
func TestCannotStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out syncBuffer
	if c := devserver.Run(t.Context(), []string{"--listen", l.Addr().String()}, &out, &out); c != devserver.ExitCannotStart {
		t.Fatalf("Run = %d, want %d\n%s", c, devserver.ExitCannotStart, out.String())
	}
	if !strings.Contains(out.String(), "cannot start etcd on "+l.Addr().String()) {
		t.Fatalf("message %q does not name the address", out.String())
	}
}
