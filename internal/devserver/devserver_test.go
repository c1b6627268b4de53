package devserver_test

import (
	"bytes"
	"context"
	"net"
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
	if c := devserver.Run(t.Context(), []string{"--nope"}, &out, &out); c != 2 {
		t.Fatalf("Run = %d, want 2", c)
	}
	if c := devserver.Run(t.Context(), []string{"extra"}, &out, &out); c != 2 {
		t.Fatalf("Run = %d, want 2", c)
	}
}
