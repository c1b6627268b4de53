package console_test

import (
	"bufio"
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/holds"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A holder and a waiter of a lock show in line order, with who they are.
func TestHolderAndWaiter(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	hold(t, cli, prefix+"nightly", "host-a")
	wait(t, cli, prefix+"nightly", "host-b")
	ts := serve(t, cli, console.WithPrefix(prefix))

	code, body := get(t, ts, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", code, body)
	}
	for _, want := range []string{prefix + "nightly", "host-a", "host-b", "report.sh", "wait.sh", "lock/election"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	if a, b := strings.Index(body, "host-a"), strings.Index(body, "host-b"); a > b {
		t.Errorf("the waiter (host-b) shows before the holder (host-a):\n%s", body)
	}
	if !strings.Contains(body, `<tr class="holder">`) || !strings.Contains(body, `<tr class="waiter">`) {
		t.Errorf("the page lacks a holder row and a waiter row:\n%s", body)
	}
}

// Without WithWrite a release is refused and the hold stays.
func TestReleaseReadOnly(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	m := hold(t, cli, prefix+"lock", "host-a")
	ts := serve(t, cli, console.WithPrefix(prefix))

	code, body := post(t, ts, "/release", url.Values{"name": {prefix + "lock"}, "confirm": {"yes"}})
	if code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Fatalf("POST /release = %d, want %d read-only:\n%s", code, http.StatusForbidden, body)
	}
	if es, _ := holds.Entries(t.Context(), cli, prefix+"lock/"); len(es) != 1 || es[0].Key != m.Key() {
		t.Fatalf("after a refused release the lock's keys are %v, want %s", es, m.Key())
	}
}

// A release asks first, then revokes the holder's lease; the form must
// carry the console's token.
func TestRelease(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	m := hold(t, cli, prefix+"lock", "host-a")
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite())
	_, page := get(t, ts, "/")
	token := csrf(t, page)
	name := prefix + "lock"

	code, body := post(t, ts, "/release", url.Values{"name": {name}, "csrf": {"bad"}, "confirm": {"yes"}})
	if code != http.StatusForbidden {
		t.Fatalf("POST /release with a bad token = %d, want %d:\n%s", code, http.StatusForbidden, body)
	}
	code, body = post(t, ts, "/release", url.Values{"name": {name}, "csrf": {token}})
	if code != http.StatusOK || !strings.Contains(body, "Revoke lease") {
		t.Fatalf("POST /release without confirm = %d, want a question:\n%s", code, body)
	}
	if es, _ := holds.Entries(t.Context(), cli, name+"/"); len(es) != 1 {
		t.Fatalf("a release not yet confirmed deleted the hold: %v", es)
	}
	es, _ := holds.Entries(t.Context(), cli, name+"/")
	code, body = post(t, ts, "/release", url.Values{"name": {name}, "csrf": {token}, "confirm": {"yes"}, "token": {"1"}})
	if code != http.StatusConflict {
		t.Fatalf("POST /release confirming another token = %d, want %d:\n%s", code, http.StatusConflict, body)
	}
	code, body = post(t, ts, "/release", url.Values{"name": {name}, "csrf": {token}, "confirm": {"yes"}, "token": {itoa(es[0].Token)}})
	if code != http.StatusOK || !strings.Contains(body, "released") {
		t.Fatalf("POST /release confirmed = %d:\n%s", code, body)
	}
	testutil.WaitClosed(t, m.Done(), 20*time.Second, "the released mutex's Done")
}

// Keys that are not holds are never deleted: no lease, or a lease that
// carries other data too.
func TestReleaseNotHold(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite())
	_, page := get(t, ts, "/config?name="+prefix+"x")
	token := csrf(t, page)
	ctx := t.Context()

	if _, err := cli.Put(ctx, prefix+"data/item", "precious"); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, ts, "/release", url.Values{"name": {prefix + "data"}, "csrf": {token}, "confirm": {"yes"}})
	if code != http.StatusConflict || !strings.Contains(body, "not holds") {
		t.Fatalf("POST /release of plain keys = %d, want %d:\n%s", code, http.StatusConflict, body)
	}

	s := testutil.Session(t, cli, 30)
	lease := s.Lease()
	if _, err := cli.Put(ctx, prefix+"shared/"+hex(int64(lease)), "h", clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"other", "data", clientv3.WithLease(lease)); err != nil {
		t.Fatal(err)
	}
	es, _ := holds.Entries(ctx, cli, prefix+"shared/")
	code, body = post(t, ts, "/release", url.Values{"name": {prefix + "shared"}, "csrf": {token}, "confirm": {"yes"}, "token": {itoa(es[0].Token)}})
	if code != http.StatusConflict || !strings.Contains(body, "not a hold") {
		t.Fatalf("POST /release of a lease with other data = %d, want %d:\n%s", code, http.StatusConflict, body)
	}
	for _, k := range []string{prefix + "data/item", prefix + "other"} {
		if r, err := cli.Get(ctx, k); err != nil || len(r.Kvs) != 1 {
			t.Errorf("%s is gone after a refused release: %v", k, err)
		}
	}
}

// The config page lists versions and renders the diff between two; a
// confirmed rollback publishes the old data as a new version.
func TestConfigDiffAndRollback(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	name := prefix + "payments/db"
	ctx := t.Context()
	for _, d := range []string{"max_conns=10\nhost=a", "max_conns=20\nhost=a"} {
		if _, err := config.Publish(ctx, cli, name, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite())
	_, body := get(t, ts, "/")
	if !strings.Contains(body, name) {
		t.Errorf("the index lacks the config %s:\n%s", name, body)
	}
	code, body := get(t, ts, "/config?name="+url.QueryEscape(name)+"&from=1&to=2")
	body = html.UnescapeString(body)
	if code != http.StatusOK || !strings.Contains(body, "-max_conns=10") || !strings.Contains(body, "+max_conns=20") {
		t.Fatalf("GET /config diff = %d, want -max_conns=10 and +max_conns=20:\n%s", code, body)
	}
	token := csrf(t, body)
	code, body = post(t, ts, "/config/rollback", url.Values{"name": {name}, "version": {"1"}, "expect": {"2"}, "csrf": {token}})
	if code != http.StatusOK || !strings.Contains(body, "Publish version 1") {
		t.Fatalf("POST /config/rollback without confirm = %d:\n%s", code, body)
	}
	if cur, _ := config.Get(ctx, cli, name); cur.Version != 2 {
		t.Fatalf("an unconfirmed rollback published version %d", cur.Version)
	}
	code, body = post(t, ts, "/config/rollback", url.Values{"name": {name}, "version": {"1"}, "expect": {"2"}, "csrf": {token}, "confirm": {"yes"}})
	if code != http.StatusOK {
		t.Fatalf("POST /config/rollback = %d:\n%s", code, body)
	}
	cur, err := config.Get(ctx, cli, name)
	if err != nil || cur.Version != 3 || string(cur.Data) != "max_conns=10\nhost=a" {
		t.Fatalf("after the rollback Get() = %d %q, %v; want version 3 with version 1's data", cur.Version, cur.Data, err)
	}
	// A page that showed version 2 cannot roll back over version 3.
	code, body = post(t, ts, "/config/rollback", url.Values{"name": {name}, "version": {"2"}, "expect": {"2"}, "csrf": {token}, "confirm": {"yes"}})
	if code != http.StatusConflict {
		t.Fatalf("a stale rollback = %d, want %d:\n%s", code, http.StatusConflict, body)
	}
}

// Publishing goes through the validator.
func TestPublishValidated(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	name := prefix + "app"
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite(),
		console.WithValidator(func(_ string, data []byte) error {
			if !strings.HasPrefix(string(data), "ok") {
				return config.ErrInvalid
			}
			return nil
		}))
	_, page := get(t, ts, "/config?name="+name)
	token := csrf(t, page)
	code, body := post(t, ts, "/config/publish", url.Values{"name": {name}, "data": {"bad"}, "csrf": {token}, "confirm": {"yes"}})
	if code != http.StatusConflict {
		t.Fatalf("publishing an invalid value = %d, want %d:\n%s", code, http.StatusConflict, body)
	}
	code, body = post(t, ts, "/config/publish", url.Values{"name": {name}, "data": {"ok"}, "csrf": {token}, "confirm": {"yes"}})
	if code != http.StatusOK {
		t.Fatalf("publishing a valid value = %d:\n%s", code, body)
	}
	if cur, err := config.Get(t.Context(), cli, name); err != nil || cur.Version != 1 {
		t.Fatalf("Get() = %v, %v; want version 1", cur, err)
	}
}

// A prefix the user's role does not cover is shown as refused, not as a
// server error, next to one it may read.
func TestRBACRefused(t *testing.T) {
	t.Parallel()
	_, cli := testutil.AuthServer(t)
	ts := serve(t, cli, console.WithPrefix("app/"), console.WithPrefix("other/"))
	code, body := get(t, ts, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200 with a refusal:\n%s", code, body)
	}
	if !strings.Contains(body, `etcd refused to read &#34;other/&#34;`) || !strings.Contains(body, "permission denied by etcd RBAC") {
		t.Errorf("the page does not show other/ as refused:\n%s", body)
	}
	if strings.Contains(body, `etcd refused to read &#34;app/&#34;`) {
		t.Errorf("the page shows app/ as refused:\n%s", body)
	}
}

// A change under a prefix reaches an open page as an event naming it.
func TestEvents(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	ts := serve(t, cli, console.WithPrefix(prefix))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": open\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if _, err := cli.Put(ctx, prefix+"k", "v"); err != nil {
		t.Fatal(err)
	}
	got, err := nextEvent(r)
	if err != nil || got != prefix {
		t.Fatalf("event = %q, %v; want %q", got, err, prefix)
	}
}

// Registered instances show with their state, metadata and TTL left.
func TestServices(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	for _, in := range []registry.Instance{
		{Service: prefix + "payments", ID: "a", Addr: "10.0.0.7:8080", Metadata: map[string]string{"zone": "eu-1"}},
		{Service: prefix + "payments", ID: "b", Addr: "10.0.0.8:8080", State: registry.Draining},
	} {
		reg, err := registry.Register(t.Context(), cli, in, registry.WithTTL(30))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Deregister(context.Background()) })
	}
	ts := serve(t, cli, console.WithPrefix(prefix))
	_, body := get(t, ts, "/")
	for _, want := range []string{prefix + "payments", "10.0.0.7:8080", "zone=eu-1", `<tr class="draining"><td>b</td>`, `<tr class="serving"><td>a</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
}

// A configuration etcd refuses to show or change reads as refused: the
// page at 200, a publish at 403, never a server error.
func TestRBACRefusedConfig(t *testing.T) {
	t.Parallel()
	_, cli := testutil.AuthServer(t)
	ts := serve(t, cli, console.WithPrefix("other/"), console.WithWrite())
	code, body := get(t, ts, "/config?name=other/db")
	if code != http.StatusOK || !strings.Contains(body, "permission denied by etcd RBAC") {
		t.Fatalf("GET /config of a refused name = %d, want 200 with a refusal:\n%s", code, body)
	}
	_, page := get(t, ts, "/")
	code, body = post(t, ts, "/config/publish", url.Values{"name": {"other/db"}, "data": {"x"}, "csrf": {csrf(t, page)}, "confirm": {"yes"}})
	if code != http.StatusForbidden || !strings.Contains(body, "refused by etcd RBAC") {
		t.Fatalf("POST /config/publish of a refused name = %d, want %d:\n%s", code, http.StatusForbidden, body)
	}
}
