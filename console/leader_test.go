package console_test

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// An open page's event stream goes on telling changes after the member
// the console reads from lost its leader, which cancels every watch that
// requires one.
func TestEventsAfterLeaderLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewCluster(t, 3)
	lead, err := c.WaitLeader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Member(lead).Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ts := serve(t, cli, console.WithPrefix("jobs/"))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan error, 1)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			p, err := nextEvent(r)
			if err != nil {
				events <- err
				return
			}
			if p == "jobs/" {
				events <- nil
			}
		}
	}()
	put := func(key string) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer pcancel()
		if _, err := cli.Put(pctx, key, "x"); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	wantEvent := func(what string) {
		t.Helper()
		select {
		case err := <-events:
			if err != nil {
				t.Fatalf("%s: the event stream ended: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no change event", what)
		}
	}
	put("jobs/a")
	wantEvent("before the leader loss")

	// A watch of the test's own, which requires a leader as the console's
	// does, tells when the member has cancelled such watches.
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(t.Context()))
	defer wcancel()
	wch := cli.Watch(wctx, "jobs/", clientv3.WithPrefix())
	for i := range c.Size() {
		if i != lead {
			c.Member(i).Stop()
		}
	}
	deadline := time.After(60 * time.Second)
	for lost := false; !lost; {
		select {
		case wr, ok := <-wch:
			lost = !ok || wr.Err() != nil || wr.Canceled
		case <-deadline:
			t.Fatal("the member never cancelled the watches that require a leader")
		}
	}
	for i := range c.Size() {
		if i != lead {
			if err := c.Member(i).Restart(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.WaitLeader(t.Context()); err != nil {
		t.Fatal(err)
	}
	put("jobs/b")
	wantEvent("after the leader loss")
	cleanKeys(t, cli, "jobs/")
}
