package console_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/testutil"
)

// getHost fetches path from ts with the Host header host.
func getHost(t testing.TB, url, host string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// A page asked for under another host name (a DNS-rebound domain) is
// refused; loopback names, the listening address and the allowed hosts
// are served.
func TestHostChecked(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithAllowedHosts("console.example", "proxy.example:8443"))
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, tt := range []struct {
		name, host string
		want       int
	}{
		{"rebound domain", "evil.example", http.StatusMisdirectedRequest},
		{"rebound domain with the port", "evil.example:" + port, http.StatusMisdirectedRequest},
		{"allowed host on another port", "proxy.example:80", http.StatusMisdirectedRequest},
		{"loopback address", "127.0.0.1:" + port, http.StatusOK},
		{"localhost", "localhost:" + port, http.StatusOK},
		{"IPv6 loopback", "[::1]:" + port, http.StatusOK},
		{"allowed host, any port", "console.example:9000", http.StatusOK},
		{"allowed host:port", "proxy.example:8443", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/", "/static/console.js"} {
				if got := getHost(t, ts.URL+path, tt.host); got != tt.want {
					t.Errorf("GET %s with Host %s = %d, want %d", path, tt.host, got, tt.want)
				}
			}
		})
	}
}
