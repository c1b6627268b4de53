package etcdclient_test

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
)

// slowConfig has timeouts long enough that an error which names its cause
// can only come from the probe, not from a request that timed out.
func slowConfig(eps ...string) etcdclient.Config {
	c := etcdclient.Default()
	c.Endpoints = eps
	c.DialTimeout, c.CommandTimeout = 20*time.Second, 20*time.Second
	return c
}

// refusedAddr returns an address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCheck(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithTLS(), etcdtest.WithAuth("rootpw"))
	mtls := etcdtest.NewServer(t, etcdtest.WithClientCertAuth())
	require.NoError(t, srv.AddUser(t.Context(), "alice", "alicepw", "jobs/"))
	files, mfiles := srv.TLSFiles(), mtls.TLSFiles()
	other, err := etcdtest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("alicepw\n"), 0o600))

	tests := []struct {
		name    string
		cfg     func(c *etcdclient.Config)
		key     string
		wantErr error  // nil: Check succeeds
		wantMsg string // in the error message
	}{
		{name: "right CA", key: "jobs/x", cfg: func(c *etcdclient.Config) { c.CACert = files.CA; c.User = "alice:alicepw" }},
		{name: "password file", key: "jobs/x", cfg: func(c *etcdclient.Config) {
			c.CACert, c.User, c.PasswordFile = files.CA, "alice", pwFile
		}},
		{name: "wrong CA", key: "jobs/x", cfg: func(c *etcdclient.Config) { c.CACert = other.CA; c.User = "alice:alicepw" },
			wantErr: etcdclient.ErrTLS, wantMsg: "certificate signed by unknown authority"},
		{name: "https without cacert", key: "jobs/x", cfg: func(c *etcdclient.Config) { c.User = "alice:alicepw" },
			wantErr: etcdclient.ErrTLS, wantMsg: "give --cacert"},
		{name: "wrong password", key: "jobs/x", cfg: func(c *etcdclient.Config) { c.CACert = files.CA; c.User = "alice:nope" },
			wantErr: etcdclient.ErrAuth, wantMsg: "check --user and --password"},
		{name: "outside the user's prefix", key: "config/db", cfg: func(c *etcdclient.Config) { c.CACert = files.CA; c.User = "alice:alicepw" },
			wantErr: etcdclient.ErrPermission, wantMsg: "etcd user alice may not read config/db (permission denied by etcd RBAC"},
		{name: "client certificate", key: "k", cfg: func(c *etcdclient.Config) {
			c.Endpoints, c.CACert, c.Cert, c.Key = mtls.Endpoints(), mfiles.CA, mfiles.Cert, mfiles.Key
		}},
		{name: "client certificate missing", key: "k", cfg: func(c *etcdclient.Config) { c.Endpoints, c.CACert = mtls.Endpoints(), mfiles.CA },
			wantErr: etcdclient.ErrTLS, wantMsg: "client certificate"},
		{name: "client certificate of another CA", key: "k", cfg: func(c *etcdclient.Config) {
			c.Endpoints, c.CACert, c.Cert, c.Key = mtls.Endpoints(), mfiles.CA, other.Cert, other.Key
		}, wantErr: etcdclient.ErrTLS, wantMsg: "does not accept the client certificate"},
		{name: "connection refused", key: "k", cfg: func(c *etcdclient.Config) { c.Endpoints = []string{refusedAddr(t)} },
			wantErr: etcdclient.ErrUnreachable, wantMsg: "connection refused"},
		{name: "no such host", key: "k", cfg: func(c *etcdclient.Config) { c.Endpoints = []string{"etcd.coordkit.invalid:2379"} },
			wantErr: etcdclient.ErrUnreachable, wantMsg: "no such host"},
		{name: "one good endpoint is enough", key: "jobs/x", cfg: func(c *etcdclient.Config) {
			c.Endpoints = append([]string{"https://" + refusedAddr(t)}, srv.Endpoints()...)
			c.CACert, c.User = files.CA, "alice:alicepw"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := slowConfig(srv.Endpoints()...)
			tt.cfg(&cfg)
			cli, err := cfg.New(t.Context())
			if err == nil {
				defer cli.Close()
				err = cfg.Check(t.Context(), cli, tt.key)
			}
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
}

func TestNoPassword(t *testing.T) {
	cfg := etcdclient.Default()
	cfg.User = "root"
	_, err := cfg.New(t.Context())
	require.ErrorIs(t, err, etcdclient.ErrNoPassword)
	cfg.User = "root:pw"
	_, err = cfg.ClientConfig()
	require.NoError(t, err)
}

func TestLoadEnv(t *testing.T) {
	t.Setenv("ETCDCTL_ENDPOINTS", "a:1, b:2")
	t.Setenv("LOCKCTL_DIAL_TIMEOUT", "7s")
	t.Setenv("ETCDCTL_DIAL_TIMEOUT", "9s")
	t.Setenv("LOCKCTL_KEY", "jobs/x/123") // lockctl's own: never the key file
	t.Setenv("ETCDCTL_KEY", "/etc/etcd/client-key.pem")
	t.Setenv("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true")
	t.Setenv("LOCKCTL_USER", "alice")
	cfg := etcdclient.Default()
	require.NoError(t, cfg.LoadEnv("LOCKCTL", "ETCDCTL"))
	require.Equal(t, []string{"a:1", "b:2"}, cfg.Endpoints)
	require.Equal(t, 7*time.Second, cfg.DialTimeout, "the first prefix wins")
	require.Equal(t, "/etc/etcd/client-key.pem", cfg.Key)
	require.True(t, cfg.InsecureSkipTLSVerify)
	require.Equal(t, "alice", cfg.User)

	t.Setenv("LOCKCTL_KEY_FILE", "/k.pem")
	require.NoError(t, cfg.LoadEnv("LOCKCTL", "ETCDCTL"))
	require.Equal(t, "/k.pem", cfg.Key)

	for _, tt := range []struct{ name, value, want string }{
		{"LOCKCTL_DIAL_TIMEOUT", "5", `$LOCKCTL_DIAL_TIMEOUT="5" is not a duration: give a number with a unit, such as 5s`},
		{"ETCDCTL_DEBUG", "yes please", `$ETCDCTL_DEBUG="yes please" is not a boolean: give true or false`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			before := cfg
			err := cfg.LoadEnv("LOCKCTL", "ETCDCTL")
			require.ErrorIs(t, err, etcdclient.ErrConfig)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, before, cfg, "a failed LoadEnv changes nothing")
		})
	}
}

// TestLoadEnvCredentials: the user, password and password file come from
// one prefix, the first that sets any of them, so a password kept for
// etcdctl neither pairs with another prefix's user nor clashes with its
// password file.
func TestLoadEnvCredentials(t *testing.T) {
	t.Setenv("ETCDCTL_USER", "admin")
	t.Setenv("ETCDCTL_PASSWORD", "adminpw")
	t.Setenv("LOCKCTL_USER", "cron")
	t.Setenv("LOCKCTL_PASSWORD_FILE", "/etc/lockctl/pw")
	cfg := etcdclient.Default()
	require.NoError(t, cfg.LoadEnv("LOCKCTL", "ETCDCTL"))
	require.Equal(t, "cron", cfg.User)
	require.Empty(t, cfg.Password, "ETCDCTL_PASSWORD belongs to ETCDCTL_USER")
	require.Equal(t, "/etc/lockctl/pw", cfg.PasswordFile)

	t.Setenv("LOCKCTL_USER", "")
	t.Setenv("LOCKCTL_PASSWORD_FILE", "")
	require.NoError(t, cfg.LoadEnv("LOCKCTL", "ETCDCTL"))
	require.Equal(t, "admin", cfg.User)
	require.Equal(t, "adminpw", cfg.Password)
	require.Empty(t, cfg.PasswordFile)
}

func TestAddFlags(t *testing.T) {
	cfg := etcdclient.Default()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	cfg.AddFlags(fs)
	require.NoError(t, fs.Parse([]string{"--endpoints", "https://a:1,https://b:2", "--dial-timeout", "2s",
		"--cacert", "ca.pem", "--key", "k.pem", "--user", "u", "--password-file", "/pw", "--debug", "--keepalive-time", "0"}))
	require.Equal(t, []string{"https://a:1", "https://b:2"}, cfg.Endpoints)
	require.Equal(t, 2*time.Second, cfg.DialTimeout)
	require.Equal(t, 5*time.Second, cfg.CommandTimeout, "unset flags keep their value")
	require.Equal(t, "k.pem", cfg.Key)
	require.Equal(t, "/pw", cfg.PasswordFile)
	require.True(t, cfg.Debug)
	require.Zero(t, cfg.KeepAliveTime)
}

func TestValidate(t *testing.T) {
	files, err := etcdtest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	other, err := etcdtest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  func(c *etcdclient.Config)
		want string
	}{
		{"no endpoints", func(c *etcdclient.Config) { c.Endpoints = nil }, "--endpoints is empty"},
		{"bad scheme", func(c *etcdclient.Config) { c.Endpoints = []string{"ftp://x"} }, `scheme "ftp"`},
		{"missing CA", func(c *etcdclient.Config) { c.CACert = "/nonexistent/ca.pem" }, "--cacert /nonexistent/ca.pem: no such file"},
		{"not a CA", func(c *etcdclient.Config) { c.CACert = files.Key }, "no PEM certificate in it"},
		{"cert without key", func(c *etcdclient.Config) { c.Cert = files.Cert }, "--cert and --key go together"},
		{"key of another cert", func(c *etcdclient.Config) { c.Cert, c.Key = files.Cert, other.Key }, "not a matching TLS certificate and key"},
		{"two passwords", func(c *etcdclient.Config) { c.User, c.PasswordFile = "u:p", files.CA }, "give one"},
		{"zero timeout", func(c *etcdclient.Config) { c.CommandTimeout = 0 }, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := etcdclient.Default()
			tt.cfg(&cfg)
			err := cfg.Validate()
			require.ErrorIs(t, err, etcdclient.ErrConfig)
			require.ErrorContains(t, err, tt.want)
		})
	}
	require.NoError(t, etcdclient.Default().Validate())
}
