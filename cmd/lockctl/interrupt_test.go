package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestInterruptedWhileConnecting: a signal while lockctl is still waiting
// for etcd's first answer ends every subcommand with ExitInterrupted, not
// with "cannot reach etcd". The endpoint accepts connections and never
// answers, so only the signal (here: the context run gets from the signal
// router, cancelled) can end the wait before the timeouts.
func TestInterruptedWhileConnecting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	for _, args := range [][]string{
		{"status", "jobs/x"},
		{"ls", "jobs/"},
		{"release", "--force", "--yes", "jobs/x"},
		{"run", "jobs/x", "--", "true"},
		{"elect", "--restart", "jobs/x", "--", "true"},
		{"register", "svc/x", "--addr", "10.0.0.1:80", "--", "true"},
		{"discover", "svc/x", "--watch"},
	} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(500*time.Millisecond, cancel)
			var out, errb bytes.Buffer
			full := append([]string{"--endpoints", l.Addr().String(), "--dial-timeout", "20s", "--command-timeout", "20s"}, args...)
			code := run(ctx, full, strings.NewReader(""), &out, &errb)
			if code != ExitInterrupted || strings.Contains(errb.String(), "cannot reach") {
				t.Fatalf("lockctl %s interrupted while connecting = %d, stderr %q; want %d", strings.Join(args, " "), code, errb.String(), ExitInterrupted)
			}
		})
	}
}
