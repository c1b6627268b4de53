package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// rbacEtcd starts an etcd with authentication on, with a root user and a
// user "cron" (password "cronpw") whose only role has readwrite on each
// of prefixes. It returns the endpoint and a client logged in as root.
func rbacEtcd(t testing.TB, prefixes ...string) (string, *clientv3.Client) {
	t.Helper()
	srv := etcdtest.NewServer(t)
	cli := srv.NewClient(t)
	ctx := t.Context()
	steps := []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "cron"); return err },
		func() error { _, err := cli.UserAdd(ctx, "cron", "cronpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "cron", "cron"); return err },
	}
	for _, p := range prefixes {
		steps = append(steps, func() error {
			_, err := cli.RoleGrantPermission(ctx, "cron", p, clientv3.GetPrefixRangeEnd(p), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		})
	}
	steps = append(steps, func() error { _, err := cli.AuthEnable(ctx); return err })
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	ep := srv.Endpoints()[0]
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return ep, root
}

// lockedBuffer is a bytes.Buffer that lockctl and its command's output
// copier may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lockctlAs runs lockctl as the user cron against ep.
func lockctlAs(ctx context.Context, ep string, args ...string) (code int, stdout, stderr string) {
	var out, errb lockedBuffer
	full := append([]string{"--endpoints", ep, "--user", "cron:cronpw", "--dial-timeout", "5s", "--command-timeout", "5s"}, args...)
	code = run(ctx, full, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestRBAC runs every subcommand as a user whose role has readwrite on
// jobs/ only: each works on names under jobs/, and ls without a prefix is
// refused with advice instead of a bare "permission denied".
func TestRBAC(t *testing.T) {
	ep, root := rbacEtcd(t, "jobs/")
	ctx := t.Context()
	dir := t.TempDir()

	ok := func(t *testing.T, args ...string) string {
		t.Helper()
		code, out, errs := lockctlAs(ctx, ep, args...)
		if code != 0 {
			t.Fatalf("lockctl %s = %d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	t.Run("run", func(t *testing.T) { ok(t, "run", "jobs/a", "--", "true") })
	t.Run("run-limit", func(t *testing.T) { ok(t, "run", "--limit", "2", "jobs/sem", "--", "true") })
	t.Run("elect", func(t *testing.T) { ok(t, "elect", "jobs/e", "--", "true") })
	t.Run("run-waits", func(t *testing.T) {
		// A contended lock: the waiter watches the holder's key, which
		// starts the session's watch keeper too.
		s, err := concurrency.NewSession(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m := mutex.New(s, "jobs/busy")
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var code int
		var errs string
		wg.Go(func() { code, _, errs = lockctlAs(ctx, ep, "run", "jobs/busy", "--", "true") })
		// Should the wait below fail, the waiting lockctl still gets the
		// lock and ends before the test does.
		defer wg.Wait()
		defer m.Unlock(context.WithoutCancel(ctx))
		waitFor(t, func() bool {
			resp, err := root.Get(ctx, "jobs/busy/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err == nil && resp.Count == 2
		})
		if err := m.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if code != 0 {
			t.Fatalf("waiting run = %d, want 0; stderr %s", code, errs)
		}
	})
	t.Run("elect-restart", func(t *testing.T) {
		marker := filepath.Join(dir, "ran")
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		var code int
		var errs string
		wg.Go(func() {
			code, _, errs = lockctlAs(rctx, ep, "elect", "--restart", "jobs/sup", "--", "sh", "-c", "echo ran >> "+marker+"; sleep 60")
		})
		waitFor(t, func() bool { _, err := os.Stat(marker); return err == nil })
		cancel()
		wg.Wait()
		if code != 0 {
			t.Fatalf("elect --restart stopped after one run = %d, want 0; stderr %s", code, errs)
		}
	})
	// A hold of root's, to look at and break as cron.
	s, err := concurrency.NewSession(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held := mutex.New(s, "jobs/held")
	if err := held.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("status", func(t *testing.T) {
		if out := ok(t, "status", "jobs/held"); !strings.Contains(out, "holder") {
			t.Fatalf("status shows no holder:\n%s", out)
		}
	})
	t.Run("ls-prefix", func(t *testing.T) {
		if out := ok(t, "ls", "jobs/"); !strings.Contains(out, "jobs/held") {
			t.Fatalf("ls jobs/ does not list jobs/held:\n%s", out)
		}
	})
	t.Run("ls-everything", func(t *testing.T) {
		code, _, errs := lockctlAs(ctx, ep, "ls")
		t.Logf("stderr: %s", errs)
		if code != ExitUnavailable || !strings.Contains(errs, "give a PREFIX") || !strings.Contains(errs, "RBAC") || strings.Contains(errs, "\x00") {
			t.Fatalf("ls without a prefix = %d, stderr %q; want %d, RBAC and advice to give a PREFIX, no NUL key", code, errs, ExitUnavailable)
		}
	})
	t.Run("release", func(t *testing.T) {
		out := ok(t, "release", "--force", "--yes", "jobs/held")
		if !strings.Contains(out, "released") {
			t.Fatalf("release says %q", out)
		}
		select {
		case <-held.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("the hold was not broken")
		}
	})
}

// TestRBACRefused: a name outside the user's prefixes is refused with the
// RBAC explanation and ExitUnavailable, by every subcommand.
func TestRBACRefused(t *testing.T) {
	ep, _ := rbacEtcd(t, "jobs/")
	ctx := t.Context()
	for _, args := range [][]string{
		{"run", "other/x", "--", "true"},
		{"run", "--limit", "2", "other/x", "--", "true"},
		{"elect", "other/x", "--", "true"},
		{"elect", "--restart", "other/x", "--", "true"},
		{"status", "other/x"},
		{"ls", "other/"},
		{"release", "--force", "--yes", "other/x"},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, out, errs := lockctlAs(ctx, ep, args...)
			if code != ExitUnavailable || !strings.Contains(errs, "RBAC") || !strings.Contains(errs, "other/") || !strings.Contains(errs, "grant-permission") {
				t.Fatalf("lockctl %s = %d\nstdout: %s\nstderr: %s\nwant %d and the RBAC explanation", strings.Join(args, " "), code, out, errs, ExitUnavailable)
			}
			t.Logf("stderr: %s", errs)
			if strings.Contains(out, "ran") {
				t.Fatal("the command ran")
			}
		})
	}
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRBACReadOnly: a user who may read a name but not write it passes the
// first read, then is refused when it joins the line: every acquiring
// subcommand says so with the RBAC explanation instead of waiting or
// campaigning again for ever.
func TestRBACReadOnly(t *testing.T) {
	ep, root := rbacEtcd(t, "jobs/")
	ctx := t.Context()
	if _, err := root.RoleGrantPermission(ctx, "cron", "ro/", clientv3.GetPrefixRangeEnd("ro/"), clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "ro/x", "--", "echo", "ran"},
		{"elect", "ro/x", "--", "echo", "ran"},
		{"elect", "--restart", "ro/x", "--", "echo", "ran"},
	} {
		t.Run(strings.Join(args[:len(args)-4], "-"), func(t *testing.T) {
			code, out, errs := lockctlAs(ctx, ep, args...)
			if code != ExitUnavailable || !strings.Contains(errs, "may not write ro/x/") || !strings.Contains(errs, "grant-permission") {
				t.Fatalf("lockctl %s = %d\nstdout: %s\nstderr: %s\nwant %d and the RBAC explanation", strings.Join(args, " "), code, out, errs, ExitUnavailable)
			}
			if strings.Contains(out, "ran") {
				t.Fatal("the command ran")
			}
		})
	}
}
