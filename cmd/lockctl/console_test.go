package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
)

var consoleAddr = regexp.MustCompile(`console on (http://\S+) \(([^)]+)\)`)

// TestConsole: lockctl console serves the page on the address it prints,
// read-only by default, to its own and --allow-host names only, and exits 0 when its context ends (Ctrl-C).
func TestConsole(t *testing.T) {
	srv := etcdtest.NewServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--endpoints", srv.Endpoints()[0], "console", "--listen", "127.0.0.1:0", "--prefix", "jobs/", "--allow-host", "console.example"}, strings.NewReader(""), &out, &errb)
	}()
	defer func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("lockctl console exited %d, want 0; stderr:\n%s", c, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("lockctl console did not exit after its context ended")
		}
	}()
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
		if m = consoleAddr.FindStringSubmatch(out.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout %q stderr %q", out.String(), errb.String())
		}
	}
	if m[2] != "read-only" {
		t.Errorf("mode = %q, want read-only", m[2])
	}
	resp, err := http.Get(m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "jobs/") {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
	// Another host name (a domain rebound to the address) is refused;
	// an --allow-host name is served.
	for host, want := range map[string]int{"evil.example": http.StatusMisdirectedRequest, "console.example:8080": http.StatusOK} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, m[1]+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET / with Host %s = %d, want %d", host, resp.StatusCode, want)
		}
	}
	// An open event stream must not hold up the exit.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, m[1]+"/events", nil)
	ev, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
}
