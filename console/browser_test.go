package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
)

// browserWait bounds each wait for the page; what the browser test checks
// is that things happen, not how fast.
const browserWait = 15 * time.Second

// live matches once the index follows etcd: its sections are fetched
// again when the event stream opens, and clicks must not race that.
const live = `body[data-live]`

// browser starts headless Chromium for the test, or skips the test when
// no Chromium is installed. Each action runs under its own bounded wait.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium binary found (apt-get install chromium): skipping the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx
}

// do runs actions within browserWait; on failure it saves a screenshot
// to $TEST_ARTIFACTS (or the test's temp dir), logs its path and fails.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(wctx, steps...); err != nil {
		t.Fatalf("%s: %v (screenshot: %s)", what, err, screenshot(t, ctx))
	}
}

// text returns the text of the element sel, waiting for it within
// browserWait, as do does. It asks again while a form's submission is
// still replacing the page (the query then meets the old document).
func text(t *testing.T, ctx context.Context, what, sel string) string {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := chromedp.Run(wctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v (screenshot: %s)", what, err, screenshot(t, ctx))
		}
	}
}

func screenshot(t *testing.T, ctx context.Context) string {
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "none: " + err.Error()
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(t.Name())+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "none: " + err.Error()
	}
	t.Logf("screenshot saved to %s", path)
	return path
}

// TestBrowser drives the console in headless Chromium: a lock taken while
// the page is open appears on it, a release from the page frees it, a
// diff renders and a rollback publishes a new version.
func TestBrowser(t *testing.T) {
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	cleanKeys(t, cli, prefix)
	ts := serve(t, cli, console.WithPrefix(prefix), console.WithWrite())
	// After serve: the browser, and its open event stream, must be gone
	// before the test server's Close waits for its requests.
	ctx := browser(t)
	lock := prefix + "jobs/nightly"
	sel := fmt.Sprintf(`div.hold[data-name=%q]`, lock)

	name := prefix + "payments/db"
	for _, d := range []string{"max_conns=10\nhost=a", "max_conns=20\nhost=a"} {
		if _, err := config.Publish(t.Context(), cli, name, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, "open the console", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(live)))
	opened := text(t, ctx, "read the console", "main")
	if strings.Contains(opened, lock) {
		t.Fatalf("the page shows %s before anyone took it", lock)
	}
	m := hold(t, cli, lock, "host-a")
	do(t, ctx, "see the new holder", chromedp.WaitVisible(chromedp.CSS(sel+` tr.holder`)))
	if p := os.Getenv("CONSOLE_SCREENSHOT"); p != "" {
		shoot(t, ctx, p)
	}

	do(t, ctx, "release from the page",
		chromedp.Click(chromedp.CSS(sel+` button.release`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
		chromedp.Click(chromedp.CSS(`#confirm`)))
	result := text(t, ctx, "read the release's result", "#result")
	if !strings.Contains(result, "released "+m.Key()) {
		t.Fatalf("release result %q, want released %s", result, m.Key())
	}
	testutil.WaitClosed(t, m.Done(), browserWait, "the released mutex's Done")
	do(t, ctx, "see it free", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(live)), chromedp.WaitNotPresent(chromedp.CSS(sel)))

	do(t, ctx, "render a diff",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(live)),
		chromedp.Click(chromedp.CSS(`table.configs a`)),
		chromedp.WaitVisible(chromedp.CSS(`#diffform`)),
		chromedp.SetValue(chromedp.CSS(`#diffform select[name=from]`), "1"),
		chromedp.SetValue(chromedp.CSS(`#diffform select[name=to]`), "2"),
		chromedp.Click(chromedp.CSS(`#showdiff`)))
	diff := text(t, ctx, "read the diff", "#diff")
	if !strings.Contains(diff, "-max_conns=10") || !strings.Contains(diff, "+max_conns=20") {
		t.Fatalf("diff %q, want -max_conns=10 and +max_conns=20", diff)
	}

	do(t, ctx, "roll back from the page",
		chromedp.Click(chromedp.CSS(`button.rollback[data-version="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm`)),
		chromedp.Click(chromedp.CSS(`#confirm`)))
	result = text(t, ctx, "read the rollback's result", "#result")
	cur, err := config.Get(t.Context(), cli, name)
	if err != nil || cur.Version != 3 || string(cur.Data) != "max_conns=10\nhost=a" {
		t.Fatalf("after the rollback (%q) Get() = %d %q, %v; want version 3 with version 1's data", result, cur.Version, cur.Data, err)
	}
}

// shoot saves a screenshot of the page to path, for the README:
// CONSOLE_SCREENSHOT=$PWD/docs/console.png go test -run TestBrowser ./console
func shoot(t *testing.T, ctx context.Context, path string) {
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserElection: a change of leader while the page is open is
// listed under the changes seen since it opened.
func TestBrowserElection(t *testing.T) {
	cli := testutil.Client(t, srv)
	prefix := testutil.Prefix(t, cli)
	ts := serve(t, cli, console.WithPrefix(prefix))
	ctx := browser(t)
	name := prefix + "workers/scheduler"
	first := election.New(testutil.Session(t, cli, 30), name)
	wctx, cancel := context.WithTimeout(t.Context(), browserWait)
	defer cancel()
	if err := first.Campaign(wctx, "host-a"); err != nil {
		t.Fatalf("Campaign() = %v", err)
	}
	sel := fmt.Sprintf(`div.hold[data-name=%q]`, name)
	do(t, ctx, "see the leader", chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(live)),
		chromedp.WaitVisible(chromedp.CSS(sel+` tr.holder`)))

	second := election.New(testutil.Session(t, cli, 30), name)
	won := make(chan error, 1)
	go func() { won <- second.Campaign(wctx, "host-b") }()
	t.Cleanup(func() {
		cancel()
		if err := <-won; err == nil {
			_ = second.Resign(context.Background())
		}
	})
	do(t, ctx, "see the candidate in line", chromedp.WaitVisible(chromedp.CSS(sel+` tr.waiter`)))
	if err := first.Resign(wctx); err != nil {
		t.Fatalf("Resign() = %v", err)
	}
	change := text(t, ctx, "see the change of leader", "#changes li")
	if !strings.Contains(change, name) || !strings.Contains(change, second.Key()) {
		t.Fatalf("change %q, want %s → %s", change, name, second.Key())
	}
}
