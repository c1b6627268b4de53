package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// config is what every command that talks to etcd needs.
type config struct {
	endpoints      string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	cacert         string
	cert           string
	key            string
	user           string
	password       string
	insecureTLS    bool
	namespace      string
}

// env returns the first set variable among names, or def.
func env(def string, names ...string) string {
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok && v != "" {
			return v
		}
	}
	return def
}

func envDuration(def time.Duration, names ...string) time.Duration {
	if v := env("", names...); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func (c *config) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.endpoints, "endpoints", env("127.0.0.1:2379", "LOCKCTL_ENDPOINTS", "ETCDCTL_ENDPOINTS"), "comma-separated etcd endpoints ($LOCKCTL_ENDPOINTS, $ETCDCTL_ENDPOINTS)")
	f.DurationVar(&c.dialTimeout, "dial-timeout", envDuration(5*time.Second, "LOCKCTL_DIAL_TIMEOUT", "ETCDCTL_DIAL_TIMEOUT"), "give up connecting to etcd after this long ($LOCKCTL_DIAL_TIMEOUT)")
	f.DurationVar(&c.commandTimeout, "command-timeout", envDuration(5*time.Second, "LOCKCTL_COMMAND_TIMEOUT", "ETCDCTL_COMMAND_TIMEOUT"), "give up on one etcd request after this long ($LOCKCTL_COMMAND_TIMEOUT)")
	f.StringVar(&c.cacert, "cacert", env("", "LOCKCTL_CACERT", "ETCDCTL_CACERT"), "verify the server with this CA bundle ($LOCKCTL_CACERT)")
	f.StringVar(&c.cert, "cert", env("", "LOCKCTL_CERT", "ETCDCTL_CERT"), "client TLS certificate ($LOCKCTL_CERT)")
	f.StringVar(&c.key, "key", env("", "LOCKCTL_KEY_FILE", "ETCDCTL_KEY"), "client TLS key ($LOCKCTL_KEY_FILE, $ETCDCTL_KEY)")
	f.StringVar(&c.user, "user", env("", "LOCKCTL_USER", "ETCDCTL_USER"), "user[:password] for etcd authentication ($LOCKCTL_USER)")
	f.StringVar(&c.password, "password", env("", "LOCKCTL_PASSWORD", "ETCDCTL_PASSWORD"), "password for --user ($LOCKCTL_PASSWORD)")
	f.BoolVar(&c.insecureTLS, "insecure-skip-tls-verify", env("", "LOCKCTL_INSECURE_SKIP_TLS_VERIFY", "ETCDCTL_INSECURE_SKIP_TLS_VERIFY") == "true", "do not verify the server's certificate (testing only)")
	f.StringVar(&c.namespace, "namespace", env("", "LOCKCTL_NAMESPACE"), "prefix for every key lockctl uses ($LOCKCTL_NAMESPACE)")
}

// validate checks the flags before anything touches the network.
func (c *config) validate() error {
	if strings.TrimSpace(c.endpoints) == "" {
		return usagef("--endpoints is empty: give at least one etcd address, e.g. --endpoints 127.0.0.1:2379")
	}
	if c.dialTimeout <= 0 || c.commandTimeout <= 0 {
		return usagef("--dial-timeout and --command-timeout must be positive")
	}
	for flag, path := range map[string]string{"--cacert": c.cacert, "--cert": c.cert, "--key": c.key} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return usagef("%s %s: %v", flag, path, errors.Unwrap(err))
		}
	}
	if (c.cert == "") != (c.key == "") {
		return usagef("--cert and --key go together: give both or neither")
	}
	if c.cacert != "" {
		pem, err := os.ReadFile(c.cacert)
		if err != nil {
			return usagef("--cacert %s: %v", c.cacert, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return usagef("--cacert %s: no PEM certificate in it: give the CA bundle that signed etcd's certificate", c.cacert)
		}
	}
	if c.cert != "" {
		if _, err := tls.LoadX509KeyPair(c.cert, c.key); err != nil {
			return usagef("--cert %s / --key %s: not a matching TLS certificate and key: %v", c.cert, c.key, err)
		}
	}
	return nil
}

// name returns the key prefix for a user-given name.
func (c *config) name(n string) (string, error) {
	if strings.Trim(n, "/ ") == "" {
		return "", usagef("the name %q is empty: give a lock name such as jobs/nightly", n)
	}
	return c.namespace + n, nil
}

// connect returns a client that has answered one request, a count-only
// read of probeKey, or an ExitUnavailable error within the dial and command
// timeouts. probeKey lies inside the name the command was given, so that a
// user whom etcd's RBAC allows only that name's prefix passes the probe.
func (c *config) connect(ctx context.Context, probeKey string) (*clientv3.Client, error) {
	cli, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.dialTimeout+c.commandTimeout)
	defer cancel()
	if _, err := cli.Get(rctx, probeKey, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if rerr := refused("read", probeKey, err); rerr != nil {
			return nil, rerr
		}
		return nil, unavailable(c.endpoints, err)
	}
	return cli, nil
}

// dial returns a client without contacting etcd: the caller's first
// request, made with a timeout, tells whether it can be reached.
func (c *config) dial(ctx context.Context) (*clientv3.Client, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	cfg := clientv3.Config{
		Endpoints:   strings.Split(c.endpoints, ","),
		DialTimeout: c.dialTimeout,
		// A member that stops answering without closing the connection (a
		// paused process) is dropped after 10 s + 3 s of silence, the least
		// grpc-go allows, and the session's keep-alive and watches move to
		// another member. etcd accepts pings every 5 s or slower.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
		Context:              ctx,
	}
	if c.cacert != "" || c.cert != "" || c.insecureTLS {
		info := transport.TLSInfo{CertFile: c.cert, KeyFile: c.key, TrustedCAFile: c.cacert}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, usagef("TLS files: %v", err)
		}
		if c.insecureTLS {
			tc.InsecureSkipVerify = true
		}
		cfg.TLS = tc
	}
	cfg.Username, cfg.Password = c.user, c.password
	if u, p, ok := strings.Cut(c.user, ":"); ok && c.password == "" {
		cfg.Username, cfg.Password = u, p
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		// With a user, New authenticates at once: its error may be that.
		return nil, unavailable(c.endpoints, err)
	}
	return cli, nil
}

// unavailable explains a failed first request.
func unavailable(eps string, err error) error {
	hint := "is etcd running there? (try 'lockctl dev' for a local one)"
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrPermissionDenied),
		status.Code(err) == codes.Unauthenticated, status.Code(err) == codes.PermissionDenied:
		hint = "check --user and --password"
	case strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "certificate") || errors.As(err, new(*tls.CertificateVerificationError)):
		hint = "check --cacert, --cert and --key"
	}
	return withCode(ExitUnavailable, fmt.Errorf("cannot reach etcd at %s: %w; %s", eps, err, hint))
}

func newRoot(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	cfg := &config{}
	root := &cobra.Command{
		Use:   "lockctl",
		Short: "Run commands under etcd locks, semaphores and leader elections",
		Long: `lockctl runs a command only while it holds a lock, a semaphore slot or a leadership
in etcd, so that cron jobs, deploy steps and singleton workers never overlap across hosts.

It never hangs on an unreachable etcd (--dial-timeout, --command-timeout), forwards
signals to the command's process group, stops the command if the hold is lost, and
revokes its lease on exit so the next run does not wait.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cfg.flags(root)
	root.AddCommand(
		newRunCmd(cfg),
		newElectCmd(cfg),
		newStatusCmd(cfg),
		newLsCmd(cfg),
		newReleaseCmd(cfg),
		newDevCmd(),
		newVersionCmd(),
	)
	root.SetContext(ctx)
	root.Version = versionString()
	root.SetVersionTemplate("lockctl {{.Version}}\n")
	// cobra's own errors become usage errors through its hooks: bad flags,
	// wrong arguments, and an unknown subcommand (the root's arguments).
	root.SetFlagErrorFunc(cobraUsage)
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return cobraUsage(cmd, fmt.Errorf("unknown command %q%s", args[0], hint))
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	wrapArgs(root)
	return root
}

// cobraUsage makes an error of cobra's (a flag it could not parse, wrong
// arguments) a usage error that points at the command's help.
func cobraUsage(cmd *cobra.Command, err error) error {
	return withCode(ExitUsage, fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath()))
}

// wrapArgs makes the argument validators of cmd's subcommands, at any
// depth, return usage errors.
func wrapArgs(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if v := c.Args; v != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := v(cmd, args)
				if err == nil || codeOf(err) == ExitUsage {
					return err
				}
				return cobraUsage(cmd, err)
			}
		}
		wrapArgs(c)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(ctx, stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ee.code // the child's own code: nothing to print
	}
	fmt.Fprintf(stderr, "lockctl: %v\n", err)
	return codeOf(err)
}
