package console_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/testutil"
)

// A key that looks like a configuration's but whose name ends in "/"
// ("jobs//current") is not one: the index skips it, and the config page
// and its actions answer 404 for such a name.
func TestConfigNameEndingInSlash(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	if _, err := cli.Put(t.Context(), prefix+"jobs//current", "1"); err != nil {
		t.Fatal(err)
	}
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite())
	code, page := get(t, ts, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", code, page)
	}
	name := prefix + "jobs/"
	if code, body := get(t, ts, "/config?name="+url.QueryEscape(name)); code != http.StatusNotFound {
		t.Errorf("GET /config?name=%s = %d, want %d:\n%s", name, code, http.StatusNotFound, body)
	}
	for _, path := range []string{"/config/rollback", "/config/publish"} {
		form := url.Values{"csrf": {csrf(t, page)}, "name": {name}, "version": {"1"}, "data": {"x"}, "confirm": {"yes"}}
		if code, body := post(t, ts, path, form); code != http.StatusNotFound {
			t.Errorf("POST %s name=%s = %d, want %d:\n%s", path, name, code, http.StatusNotFound, body)
		}
	}
}
