package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestRegisterRBAC: a user whose role covers only svc/ registers an
// instance and discovers it (-o json, parsed); its command does not get
// the user's credentials from the environment; a service outside the role
// is refused with the RBAC explanation by both subcommands.
func TestRegisterRBAC(t *testing.T) {
	ep, _ := rbacEtcd(t, "svc/")
	ctx := t.Context()
	// Credentials from the environment, which the command must not see.
	t.Setenv("ETCDCTL_USER", "cron:cronpw")
	envFile := filepath.Join(t.TempDir(), "env")
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var code int
	var errs string
	wg.Go(func() {
		var out lockedBuffer
		var errb lockedBuffer
		code = run(rctx, []string{"--endpoints", ep, "--dial-timeout", "5s",
			"register", "svc/api", "--addr", "10.0.0.9:80", "--id", "x", "--meta", "zone=b", "--drain-delay", "0s",
			"--", "sh", "-c", "env > " + envFile + "; sleep 60"}, strings.NewReader(""), &out, &errb)
		errs = errb.String()
	})
	defer wg.Wait()
	defer cancel()

	var got []found
	waitFor(t, func() bool {
		c, out, _ := lockctlAs(ctx, ep, "discover", "svc/api", "-o", "json")
		if c != 0 {
			return false
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("discover -o json: %v\n%s", err, out)
		}
		_, err := os.Stat(envFile)
		return len(got) == 1 && err == nil
	})
	want := found{ID: "x", Addr: "10.0.0.9:80", State: "serving", Metadata: map[string]string{"zone": "b"}, Key: "svc/api/x"}
	if g := got[0]; g.ID != want.ID || g.Addr != want.Addr || g.State != want.State || g.Metadata["zone"] != "b" ||
		g.Key != want.Key || g.Lease == "" || g.TTL <= 0 {
		t.Fatalf("discover -o json = %+v, want %+v with a lease and a TTL", g, want)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "cronpw") {
		t.Fatalf("the command got lockctl's credentials:\n%s", env)
	}

	cancel() // a TERM to lockctl: drain, stop the command, deregister
	wg.Wait()
	if code != 128+15 {
		t.Fatalf("register = %d, want the command's 143; stderr %s", code, errs)
	}
	if c, out, e := lockctlAs(ctx, ep, "discover", "svc/api", "-o", "json"); c != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("after register ended: discover = %d %q %s, want []", c, out, e)
	}

	for _, args := range [][]string{
		{"register", "other/api", "--addr", "10.0.0.9:80", "--", "echo", "ran"},
		{"register", "other/api", "--addr", "10.0.0.9:80"},
		{"discover", "other/api"},
	} {
		c, out, e := lockctlAs(ctx, ep, args...)
		if c != ExitUnavailable || !strings.Contains(e, "RBAC") || !strings.Contains(e, "other/") || strings.Contains(out, "ran") {
			t.Fatalf("lockctl %s = %d\nstdout: %s\nstderr: %s\nwant %d and the RBAC explanation", strings.Join(args, " "), c, out, e, ExitUnavailable)
		}
	}
}

// TestRegisterOutage: through an etcd outage longer than --ttl, register
// says once that the registration is lost and once that it is back,
// without giving up, and discover --watch marks its set stale meanwhile
// and shows the instance again after.
func TestRegisterOutage(t *testing.T) {
	srv := etcdtest.NewServer(t)
	ep := srv.Endpoints()[0]
	ctx := t.Context()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var regOut, regErr, watchOut, watchErr lockedBuffer
	var regCode, watchCode int
	common := []string{"--endpoints", ep, "--dial-timeout", "2s", "--command-timeout", "2s"}
	wg.Go(func() {
		regCode = run(rctx, append(common, "register", "svc/o", "--addr", "10.0.0.1:80", "--ttl", "1", "--drain-delay", "0s"),
			strings.NewReader(""), &regOut, &regErr)
	})
	wg.Go(func() {
		watchCode = run(rctx, append(common, "discover", "svc/o", "--watch"), strings.NewReader(""), &watchOut, &watchErr)
	})
	waitFor(t, func() bool { return strings.Contains(watchOut.String(), "10.0.0.1:80  serving") })
	m := srv.Member(0)
	m.Stop()
	waitFor(t, func() bool { return strings.Contains(regErr.String(), "registration lost") })
	waitFor(t, func() bool { return strings.Contains(watchOut.String(), "stale: etcd cannot be reached") })
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(regErr.String(), "registered again") })
	waitFor(t, func() bool {
		out := watchOut.String()
		i := strings.LastIndex(out, "stale:")
		return i >= 0 && strings.Contains(out[i:], "revision") && strings.Contains(out[strings.LastIndex(out, "revision"):], "10.0.0.1:80  serving")
	})
	cancel()
	wg.Wait()
	if regCode != 0 || watchCode != 0 {
		t.Fatalf("register = %d (stderr %s), discover --watch = %d (stderr %s); want 0 and 0", regCode, regErr.String(), watchCode, watchErr.String())
	}
	if n := strings.Count(regErr.String(), "registration lost"); n != 1 {
		t.Fatalf("register said %d times that it was lost, want once:\n%s", n, regErr.String())
	}
	t.Logf("register's stderr:\n%s", regErr.String())
}

// TestRegisterHealthURL: with --health-url, a 2xx answer registers the
// instance as serving, a 5xx marks it draining, a 2xx serving again.
func TestRegisterHealthURL(t *testing.T) {
	srv := etcdtest.NewServer(t)
	ep := srv.Endpoints()[0]
	ctx := t.Context()
	var healthy atomic.Bool
	healthy.Store(true)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	defer hs.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var out, errb lockedBuffer
	var code int
	common := []string{"--endpoints", ep, "--dial-timeout", "2s", "--command-timeout", "2s"}
	wg.Go(func() {
		code = run(rctx, append(common, "register", "svc/u", "--addr", "10.0.0.2:80", "--drain-delay", "0s",
			"--health-interval", "50ms", "--health-url", hs.URL+"/healthz"), strings.NewReader(""), &out, &errb)
	})
	state := func(want string) func() bool {
		return func() bool {
			var got []found
			c, o, _ := run2(ctx, append(common, "discover", "svc/u", "-o", "json"))
			return c == 0 && json.Unmarshal([]byte(o), &got) == nil && len(got) == 1 && got[0].State == want
		}
	}
	waitFor(t, state("serving"))
	healthy.Store(false)
	waitFor(t, state("draining"))
	healthy.Store(true)
	waitFor(t, state("serving"))
	cancel()
	wg.Wait()
	if code != 0 || !strings.Contains(errb.String(), "503") {
		t.Fatalf("register = %d, stderr %s; want 0 and the failed check's 503", code, errb.String())
	}
}

// run2 runs lockctl with args and returns its code and outputs.
func run2(ctx context.Context, args []string) (int, string, string) {
	var out, errb lockedBuffer
	code := run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestRegisterRefusedAfterHealth: with a health check the command starts
// before the first registration; when etcd then refuses the key (a role
// that may read it but not write it), the command is stopped and lockctl
// exits 69 with the RBAC explanation.
func TestRegisterRefusedAfterHealth(t *testing.T) {
	ep, root := rbacEtcd(t, "svc/")
	ctx := t.Context()
	if _, err := root.RoleGrantPermission(ctx, "cron", "ro/", clientv3.GetPrefixRangeEnd("ro/"), clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	code, _, errs := lockctlAs(ctx, ep, "register", "ro/api", "--addr", "10.0.0.3:80", "--health-interval", "50ms",
		"--health-cmd", "true", "--", "sleep", "60")
	if code != ExitUnavailable || !strings.Contains(errs, "may not write ro/api/10.0.0.3:80") || !strings.Contains(errs, "grant-permission") {
		t.Fatalf("register = %d, stderr %s; want %d and the RBAC explanation", code, errs, ExitUnavailable)
	}
	t.Logf("stderr: %s", errs)
}
