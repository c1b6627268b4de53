package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/testutil"
)

// A config name with a line break, which would end the event stream's
// data line and inject an event of its own, is refused.
func TestEventsNameWithLineBreak(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	ts := serve(t, cli, console.WithPrefix(prefix))
	for _, name := range []string{prefix + "a\nevent: change\ndata: x", prefix + "a\rb"} {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events?config="+url.QueryEscape(name), nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /events?config=%q = %d (%q), want %d", name, resp.StatusCode, line, http.StatusBadRequest)
		}
	}
}
