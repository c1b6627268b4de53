package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
)

// TestTLSAndCredentials runs lockctl against real TLS etcds with right and
// wrong CAs and client certificates, unreachable endpoints and credentials
// given in each way: each case checks the exit code and the cause in the
// message. The timeouts are long, so a message naming the cause cannot
// come from a request that merely timed out.
func TestTLSAndCredentials(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithTLS(), etcdtest.WithAuth("rootpw"))
	mtls := etcdtest.NewServer(t, etcdtest.WithClientCertAuth())
	ctx := t.Context()
	if err := srv.AddUser(ctx, "alice", "alicepw", "jobs/"); err != nil {
		t.Fatal(err)
	}
	files, mfiles := srv.TLSFiles(), mtls.TLSFiles()
	other, err := etcdtest.NewTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("alicepw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	ep, mep := srv.Endpoints()[0], mtls.Endpoints()[0]
	slow := []string{"--dial-timeout", "20s", "--command-timeout", "20s"}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "right CA", args: []string{"--endpoints", ep, "--cacert", files.CA, "--user", "alice:alicepw", "run", "jobs/a", "--", "true"}},
		{name: "password file", args: []string{"--endpoints", ep, "--cacert", files.CA, "--user", "alice", "--password-file", pwFile, "status", "jobs/a"}},
		{name: "env credentials", env: map[string]string{"LOCKCTL_ENDPOINTS": ep, "LOCKCTL_CACERT": files.CA, "LOCKCTL_USER": "alice", "LOCKCTL_PASSWORD": "alicepw"},
			args: []string{"run", "jobs/a", "--", "true"}},
		{name: "etcdctl's credentials", env: map[string]string{"ETCDCTL_ENDPOINTS": ep, "ETCDCTL_CACERT": files.CA, "ETCDCTL_USER": "alice", "ETCDCTL_PASSWORD": "alicepw"},
			args: []string{"run", "jobs/a", "--", "true"}},
		{name: "wrong CA", args: []string{"--endpoints", ep, "--cacert", other.CA, "--user", "alice:alicepw", "run", "jobs/a", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "x509: certificate signed by unknown authority"},
		{name: "https without cacert", args: []string{"--endpoints", ep, "run", "jobs/a", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "give --cacert"},
		{name: "client certificate", args: []string{"--endpoints", mep, "--cacert", mfiles.CA, "--cert", mfiles.Cert, "--key", mfiles.Key, "run", "x", "--", "true"}},
		{name: "client certificate missing", args: []string{"--endpoints", mep, "--cacert", mfiles.CA, "run", "x", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "the server wants a client certificate: give --cert and --key"},
		{name: "client certificate missing, status", args: []string{"--endpoints", mep, "--cacert", mfiles.CA, "status", "x"},
			wantCode: ExitUnavailable, wantErr: "the server wants a client certificate"},
		{name: "client certificate of another CA", args: []string{"--endpoints", mep, "--cacert", mfiles.CA, "--cert", other.Cert, "--key", other.Key, "run", "x", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "does not accept the client certificate"},
		{name: "connection refused", args: []string{"--endpoints", refused, "run", "x", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "cannot reach etcd at " + refused + ": connection refused"},
		{name: "no such host", args: []string{"--endpoints", "etcd.coordkit.invalid:2379", "status", "x"},
			wantCode: ExitUnavailable, wantErr: "no such host"},
		{name: "wrong password", args: []string{"--endpoints", ep, "--cacert", files.CA, "--user", "alice:nope", "run", "jobs/a", "--", "true"},
			wantCode: ExitUnavailable, wantErr: "check --user and --password"},
		{name: "outside the user's prefix", args: []string{"--endpoints", ep, "--cacert", files.CA, "--user", "alice:alicepw", "status", "config/db"},
			wantCode: ExitUnavailable, wantErr: "etcd user alice may not read config/db/ (permission denied by etcd RBAC"},
		{name: "user without password, no terminal", args: []string{"--endpoints", ep, "--cacert", files.CA, "--user", "alice", "run", "jobs/a", "--", "true"},
			wantCode: ExitUsage, wantErr: "--user alice has no password: give --password-file FILE, $LOCKCTL_PASSWORD, or --password"},
		{name: "unreadable password file", args: []string{"--endpoints", ep, "--user", "alice", "--password-file", "/nonexistent/pw", "run", "jobs/a", "--", "true"},
			wantCode: ExitUsage, wantErr: "--password-file /nonexistent/pw: no such file"},
		{name: "env value without unit", env: map[string]string{"LOCKCTL_DIAL_TIMEOUT": "5"}, args: []string{"--endpoints", ep, "run", "jobs/a", "--", "true"},
			wantCode: ExitUsage, wantErr: `$LOCKCTL_DIAL_TIMEOUT="5" is not a duration: give a number with a unit, such as 5s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []string{"ENDPOINTS", "CACERT", "USER", "PASSWORD", "DIAL_TIMEOUT"} {
				t.Setenv("LOCKCTL_"+v, "")
				t.Setenv("ETCDCTL_"+v, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(t.Context(), append(append([]string{}, slow...), tt.args...), nil, &out, &errb)
			if code != tt.wantCode || !strings.Contains(errb.String(), tt.wantErr) {
				t.Fatalf("lockctl %s: code %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), code, errb.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}
