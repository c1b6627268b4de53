package etcdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// maxReconnectDelay caps gRPC's wait between attempts to reconnect to a
// member; gRPC's own cap is 120 s, too long for a member that restarts.
const maxReconnectDelay = 3 * time.Second

// Validate checks the configuration without touching the network: at least
// one endpoint, positive timeouts, TLS files that exist and hold what they
// should (a CA bundle, a certificate that matches its key), and one source
// of password at most. Its errors wrap [ErrConfig] and name the flag to fix.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Endpoints) == 0 {
		return bad("--endpoints is empty: give at least one etcd address, e.g. --endpoints https://10.0.0.1:2379")
	}
	for _, ep := range c.Endpoints {
		if _, _, err := hostPort(ep); err != nil {
			return bad("--endpoints %q: %v", ep, err)
		}
	}
	if c.DialTimeout <= 0 || c.CommandTimeout <= 0 {
		return bad("--dial-timeout and --command-timeout must be positive")
	}
	if c.KeepAliveTime < 0 || c.KeepAliveTimeout < 0 {
		return bad("--keepalive-time and --keepalive-timeout must not be negative")
	}
	for _, f := range []struct{ flag, path string }{{"--cacert", c.CACert}, {"--cert", c.Cert}, {"--key", c.Key}, {"--password-file", c.PasswordFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad("%s %s: %v", f.flag, f.path, errors.Unwrap(err))
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return bad("--cert and --key go together: give both or neither")
	}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return bad("--cacert %s: %v", c.CACert, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return bad("--cacert %s: no PEM certificate in it: give the CA bundle that signed etcd's certificate", c.CACert)
		}
	}
	if c.Cert != "" {
		if _, err := tls.LoadX509KeyPair(c.Cert, c.Key); err != nil {
			return bad("--cert %s / --key %s: not a matching TLS certificate and key: %v", c.Cert, c.Key, err)
		}
	}
	if _, p, _ := strings.Cut(c.User, ":"); c.PasswordFile != "" && (c.Password != "" || p != "") {
		return bad("both a password and --password-file: give one")
	}
	return nil
}

// credentials returns the user name and password, reading PasswordFile.
func (c Config) credentials() (user, password string, err error) {
	user, password, _ = strings.Cut(c.User, ":")
	if c.Password != "" {
		password = c.Password
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("%w: --password-file: %w", ErrConfig, err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if user == "" && password != "" {
		return "", "", fmt.Errorf("%w: a password without --user: give the user name too", ErrConfig)
	}
	if user != "" && password == "" {
		return "", "", fmt.Errorf("%w: --user %s: give --password, --password-file or the user as name:password", ErrNoPassword, user)
	}
	return user, password, nil
}

// tlsConfig returns the TLS configuration for c, or nil when c sets no TLS
// option (https:// endpoints then verify with the system's roots).
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && !c.InsecureSkipTLSVerify {
		return nil, nil
	}
	info := transport.TLSInfo{CertFile: c.Cert, KeyFile: c.Key, TrustedCAFile: c.CACert}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: TLS files: %w", ErrConfig, err)
	}
	tc.InsecureSkipVerify = c.InsecureSkipTLSVerify
	return tc, nil
}

// ClientConfig validates c and returns the etcd client configuration it
// describes: gRPC keepalive as c says, reconnect backoff capped at 3 s,
// no client log unless Debug, and the password read from PasswordFile. The
// caller may add to it (DialOptions, Context) before calling clientv3.New.
// A User without any password is [ErrNoPassword].
func (c Config) ClientConfig() (clientv3.Config, error) {
	if err := c.Validate(); err != nil {
		return clientv3.Config{}, err
	}
	user, password, err := c.credentials()
	if err != nil {
		return clientv3.Config{}, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return clientv3.Config{}, err
	}
	lg := zap.NewNop()
	if c.Debug {
		if lg, err = zap.NewDevelopment(); err != nil {
			return clientv3.Config{}, fmt.Errorf("etcdclient: debug log: %w", err)
		}
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = maxReconnectDelay
	return clientv3.Config{
		Endpoints:            c.Endpoints,
		DialTimeout:          c.DialTimeout,
		DialKeepAliveTime:    c.KeepAliveTime,
		DialKeepAliveTimeout: c.KeepAliveTimeout,
		TLS:                  tc,
		Username:             user,
		Password:             password,
		Logger:               lg,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: c.DialTimeout})},
	}, nil
}

// New returns a client of the etcd c describes. Without a user it does no
// I/O: the first request tells whether etcd can be reached ([Config.Check]
// makes it tell quickly and in words). With a user it logs in at once,
// within DialTimeout, while probing the endpoints ([Config.Probe]), so a
// TLS or network failure is reported as such rather than as a timeout.
// ctx bounds only that start: the client lives until its Close. Errors wrap
// [ErrConfig], [ErrNoPassword], [ErrAuth], [ErrTLS] or [ErrUnreachable].
func (c Config) New(ctx context.Context) (*clientv3.Client, error) {
	cc, err := c.ClientConfig()
	if err != nil {
		return nil, err
	}
	// The client's life is its own, but its log-in may be cut short by ctx
	// or by a conclusive probe: base is canceled then, or when the client
	// closes.
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cc.Context = base
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if cc.Username == "" {
		cli, err := clientv3.New(cc)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("etcdclient: %w", err)
		}
		if !stop() {
			// ctx ended as the client was made: it is cancelled already.
			cli.Close()
			return nil, fmt.Errorf("etcdclient: %w", ctx.Err())
		}
		context.AfterFunc(cli.Ctx(), cancel)
		return cli, nil
	}

	var cli *clientv3.Client
	err, perr := c.alongsideProbe(ctx, cancel, func() (err error) {
		cli, err = clientv3.New(cc)
		return err
	})
	if err == nil && !stop() {
		cli.Close()
		err = ctx.Err()
	}
	switch {
	case err == nil:
		context.AfterFunc(cli.Ctx(), cancel)
		return cli, nil
	case perr != nil:
		cancel()
		return nil, perr
	default:
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("etcdclient: log in as %s: %w", cc.Username, ctx.Err())
		}
		return nil, c.Explain(err, "log in as", cc.Username)
	}
}

// hostPort returns the address and scheme of an endpoint: "https" or "http"
// from a URL, "" for a bare host:port, "unix" for a socket.
func hostPort(ep string) (addr, scheme string, err error) {
	if !strings.Contains(ep, "://") {
		if strings.HasPrefix(ep, "unix:") || strings.HasPrefix(ep, "unixs:") {
			return "", "unix", nil
		}
		return ep, "", nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return "", "", errors.New("no host in it")
		}
		return u.Host, u.Scheme, nil
	case "unix", "unixs":
		return "", "unix", nil
	}
	return "", "", fmt.Errorf("scheme %q: want http, https or unix", u.Scheme)
}
