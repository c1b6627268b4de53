package console_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/internal/testutil"
)

// links finds the URLs a page refers to: its links, assets, form actions,
// fragments, and the event stream its script opens.
var links = regexp.MustCompile(`(href|src|action|data-src)="([^"]*)"`)

// Mounted under /console/ with http.StripPrefix, every link, asset and
// form of the pages stays under /console/.
func TestMountedUnderPath(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	hold(t, cli, prefix+"lock", "host-a")
	name := prefix + "app"
	for _, d := range []string{"a=1\n", "a=2\n"} {
		if _, err := config.Publish(t.Context(), cli, name, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", console.Handler(cli, console.WithPrefix(prefix), console.WithWrite())))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	fetch := func(method, u string, form url.Values) (*url.URL, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = ts.Client().PostForm(u, form)
		} else {
			resp, err = ts.Client().Get(u)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d:\n%s", method, u, resp.StatusCode, b)
		}
		return resp.Request.URL, string(b)
	}
	// follow GETs what page (at u) refers to, resolved as a browser does
	// against its <base>, and returns the resolved URLs by their text.
	follow := func(u *url.URL, page string) map[string]*url.URL {
		t.Helper()
		base := u
		if m := regexp.MustCompile(`<base href="([^"]*)">`).FindStringSubmatch(page); m != nil {
			base = u.ResolveReference(mustParse(t, html.UnescapeString(m[1])))
			page = strings.Replace(page, m[0], "", 1)
		} else {
			t.Errorf("%s has no <base>", u)
		}
		found := map[string]*url.URL{}
		for _, m := range links.FindAllStringSubmatch(page, -1) {
			ref := html.UnescapeString(m[2])
			if ref == "" {
				continue
			}
			v := base.ResolveReference(mustParse(t, ref))
			found[ref] = v
			if !strings.HasPrefix(v.Path, "/console/") {
				t.Errorf("%s refers to %q, resolved to %s: outside /console/", u, ref, v)
				continue
			}
			if m[1] == "action" {
				continue // a form, sent with its fields below
			}
			fetch(http.MethodGet, v.String(), nil)
		}
		return found
	}

	u, index := fetch(http.MethodGet, ts.URL+"/console/", nil)
	found := follow(u, index)
	var cfg *url.URL
	for ref, v := range found {
		if strings.HasPrefix(ref, "config?") {
			cfg = v
		}
	}
	if cfg == nil {
		t.Fatalf("the index links to no config page:\n%s", index)
	}
	u, page := fetch(http.MethodGet, cfg.String(), nil)
	found = follow(u, page)
	// The pages an action ends on sit one level deeper; their links
	// (Back among them) still lead under /console/.
	token := csrf(t, page)
	rb := base(t, u, page).ResolveReference(mustParse(t, "config/rollback"))
	form := url.Values{"csrf": {token}, "name": {name}, "version": {"1"}, "expect": {"2"}}
	u, confirm := fetch(http.MethodPost, rb.String(), form)
	follow(u, confirm)
	form.Set("confirm", "yes")
	u, done := fetch(http.MethodPost, rb.String(), form)
	follow(u, done)
	rel := base(t, u, done).ResolveReference(mustParse(t, "release"))
	if rel.Path != "/console/release" {
		t.Fatalf("release resolves to %s from %s", rel, u)
	}
	u, page = fetch(http.MethodPost, rel.String(), url.Values{"csrf": {token}, "name": {prefix + "lock"}})
	follow(u, page)

	// The script opens the event stream relative to the page too.
	_, js := fetch(http.MethodGet, ts.URL+"/console/static/console.js", nil)
	if strings.Contains(js, "'/") {
		t.Errorf("console.js uses an absolute path:\n%s", js)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/console/events", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /console/events = %d", resp.StatusCode)
	}
}

func base(t testing.TB, u *url.URL, page string) *url.URL {
	t.Helper()
	m := regexp.MustCompile(`<base href="([^"]*)">`).FindStringSubmatch(page)
	if m == nil {
		return u
	}
	return u.ResolveReference(mustParse(t, html.UnescapeString(m[1])))
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url %q: %v", s, err)
	}
	return u
}
