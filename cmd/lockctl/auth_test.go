package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
)

// TestAuth runs lockctl against an etcd with authentication on: the right
// password works, a wrong one ends with ExitUnavailable and a message that
// points at the credentials.
func TestAuth(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.NewClient(t)
	ctx := t.Context()
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "s3cret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	ep := srv.Endpoints()[0]
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--endpoints", ep, "--user", "root:s3cret", "run", "authjob", "--", "true"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("with the right password: code %d, stderr %s", code, errb.String())
	}
	errb.Reset()
	code = run(ctx, []string{"--endpoints", ep, "--user", "root", "--password", "wrong", "run", "authjob", "--", "true"}, nil, &out, &errb)
	if code != ExitUnavailable || !strings.Contains(errb.String(), "check --user and --password") {
		t.Fatalf("with a wrong password: code %d, stderr %q; want %d and a hint", code, errb.String(), ExitUnavailable)
	}
}

// TestBadTLSFiles: files that exist but hold no certificate are a usage
// error that names the problem, before any connection is tried.
func TestBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"--endpoints", "127.0.0.1:1", "--cacert", junk, "run", "x", "--", "true"}, nil, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "TLS") {
		t.Fatalf("code %d, stderr %q; want %d and a TLS message", code, errb.String(), ExitUsage)
	}
}

// TestNamespace: --namespace (and $LOCKCTL_NAMESPACE) prefix every key.
func TestNamespace(t *testing.T) {
	srv := etcdtest.NewServer(t)
	ep := srv.Endpoints()[0]
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"--endpoints", ep, "--namespace", "team1/", "run", "job", "--", "sh", "-c", "echo $LOCKCTL_KEY"}, nil, &out, &errb)
	if code != 0 || !strings.HasPrefix(out.String(), "team1/job/") {
		t.Fatalf("code %d, key %q, stderr %s", code, out.String(), errb.String())
	}
	t.Setenv("LOCKCTL_NAMESPACE", "team2/")
	out.Reset()
	code = run(t.Context(), []string{"--endpoints", ep, "run", "job", "--", "sh", "-c", "echo $LOCKCTL_KEY"}, nil, &out, &errb)
	if code != 0 || !strings.HasPrefix(out.String(), "team2/job/") {
		t.Fatalf("code %d, key %q, stderr %s", code, out.String(), errb.String())
	}
}
