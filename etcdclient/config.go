package etcdclient

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is how to reach etcd: endpoints, timeouts, TLS files and
// credentials. Its zero value is not usable; start from [Default], then
// apply [Config.LoadEnv] and the flags of [Config.AddFlags], then build a
// client with [Config.New]. A Config is a plain value: copy it freely.
type Config struct {
	// Endpoints are etcd's client URLs ("https://10.0.0.1:2379") or
	// host:port pairs.
	Endpoints []string
	// DialTimeout bounds connecting (and logging in) to etcd.
	DialTimeout time.Duration
	// CommandTimeout is meant to bound each request a program makes; the
	// client itself does not apply it. [Config.Check] uses it.
	CommandTimeout time.Duration
	// KeepAliveTime and KeepAliveTimeout are gRPC's keepalive: after
	// KeepAliveTime of silence the client pings, and drops the connection
	// if no answer comes within KeepAliveTimeout, so a member that stopped
	// answering (a paused process, a dead host) is left for another.
	// Zero KeepAliveTime turns keepalive off.
	KeepAliveTime, KeepAliveTimeout time.Duration
	// CACert is the CA bundle that verifies the server's certificate.
	// Without it, https:// endpoints are verified with the system's roots.
	CACert string
	// Cert and Key are the client's certificate and key, for servers that
	// require client certificates. They go together.
	Cert, Key string
	// InsecureSkipTLSVerify accepts any server certificate (testing only).
	InsecureSkipTLSVerify bool
	// User is the etcd user name, or "name:password" as etcdctl accepts.
	User string
	// Password is User's password; PasswordFile names a file holding it
	// (one trailing newline is ignored), for systemd credentials and
	// secrets mounted as files. Give at most one of them.
	Password, PasswordFile string
	// Debug sends the client's log to stderr.
	Debug bool
}

// Default returns the configuration of a client of a local etcd:
// 127.0.0.1:2379, 5 s dial and command timeouts, and gRPC keepalive pings
// after 10 s of silence with 3 s to answer (10 s is the least gRPC allows;
// etcd accepts pings every 5 s or slower).
func Default() Config {
	return Config{
		Endpoints:        []string{"127.0.0.1:2379"},
		DialTimeout:      5 * time.Second,
		CommandTimeout:   5 * time.Second,
		KeepAliveTime:    10 * time.Second,
		KeepAliveTimeout: 3 * time.Second,
	}
}

// LoadEnv sets the fields for which an environment variable is set (to a
// non-empty value), as etcdctl reads ETCDCTL_*. For each field it looks at
// the variables of each prefix in turn and the first set one wins, so
// LoadEnv("LOCKCTL", "ETCDCTL") lets LOCKCTL_* override ETCDCTL_*; the
// credentials (USER, PASSWORD, PASSWORD_FILE) are taken together from the
// first prefix that sets any of them. See the
// package documentation for the names; the key file is <PREFIX>_KEY_FILE,
// and ETCDCTL_KEY as etcdctl names it. A value that does not parse (a
// duration without a unit, a boolean that is not true or false) is an error
// that names the variable and the expected form; fields are left as they
// were in that case.
func (c *Config) LoadEnv(prefixes ...string) error {
	n := *c
	lookup := func(suffix string) (name, val string) {
		for _, p := range prefixes {
			names := []string{p + "_" + suffix}
			if suffix == "KEY_FILE" && p == "ETCDCTL" {
				names = append(names, "ETCDCTL_KEY")
			}
			for _, name := range names {
				if v := os.Getenv(name); v != "" {
					return name, v
				}
			}
		}
		return "", ""
	}
	if _, v := lookup("ENDPOINTS"); v != "" {
		n.Endpoints = splitList(v)
	}
	for _, d := range []struct {
		suffix string
		to     *time.Duration
	}{{"DIAL_TIMEOUT", &n.DialTimeout}, {"COMMAND_TIMEOUT", &n.CommandTimeout},
		{"KEEPALIVE_TIME", &n.KeepAliveTime}, {"KEEPALIVE_TIMEOUT", &n.KeepAliveTimeout}} {
		name, v := lookup(d.suffix)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%w: $%s=%q is not a duration: give a number with a unit, such as 5s or 500ms", ErrConfig, name, v)
		}
		*d.to = dur
	}
	for _, s := range []struct {
		suffix string
		to     *string
	}{{"CACERT", &n.CACert}, {"CERT", &n.Cert}, {"KEY_FILE", &n.Key}} {
		if _, v := lookup(s.suffix); v != "" {
			*s.to = v
		}
	}
	// The credentials come as a whole from the first prefix that sets any
	// of them: ETCDCTL_PASSWORD kept for etcdctl must not pair with
	// LOCKCTL_USER, nor clash with LOCKCTL_PASSWORD_FILE.
	for _, p := range prefixes {
		user, pw, file := os.Getenv(p+"_USER"), os.Getenv(p+"_PASSWORD"), os.Getenv(p+"_PASSWORD_FILE")
		if user != "" || pw != "" || file != "" {
			n.User, n.Password, n.PasswordFile = user, pw, file
			break
		}
	}
	for _, b := range []struct {
		suffix string
		to     *bool
	}{{"INSECURE_SKIP_TLS_VERIFY", &n.InsecureSkipTLSVerify}, {"DEBUG", &n.Debug}} {
		name, v := lookup(b.suffix)
		if v == "" {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%w: $%s=%q is not a boolean: give true or false", ErrConfig, name, v)
		}
		*b.to = on
	}
	*c = n
	return nil
}

// AddFlags defines etcdctl's flags on fs, bound to c's fields, with c's
// current values as defaults (so call it after [Config.LoadEnv] for the
// environment to show in the help): --endpoints, --dial-timeout,
// --command-timeout, --keepalive-time, --keepalive-timeout, --cacert,
// --cert, --key, --insecure-skip-tls-verify, --user, --password,
// --password-file and --debug. A program built on pflag (cobra) adds them
// with pflag's FlagSet.AddGoFlagSet.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.Var((*listValue)(&c.Endpoints), "endpoints", "comma-separated etcd endpoints (URLs or host:port)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "give up connecting to etcd after this long")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", c.CommandTimeout, "give up on one etcd request after this long")
	fs.DurationVar(&c.KeepAliveTime, "keepalive-time", c.KeepAliveTime, "ping etcd after this long without traffic (0: never)")
	fs.DurationVar(&c.KeepAliveTimeout, "keepalive-timeout", c.KeepAliveTimeout, "drop a connection whose ping is not answered within this long")
	fs.StringVar(&c.CACert, "cacert", c.CACert, "verify etcd's certificate with this CA bundle")
	fs.StringVar(&c.Cert, "cert", c.Cert, "client TLS certificate file")
	fs.StringVar(&c.Key, "key", c.Key, "client TLS key file")
	fs.BoolVar(&c.InsecureSkipTLSVerify, "insecure-skip-tls-verify", c.InsecureSkipTLSVerify, "do not verify etcd's certificate (testing only)")
	fs.StringVar(&c.User, "user", c.User, "etcd user name, or name:password")
	fs.StringVar(&c.Password, "password", c.Password, "password of --user (visible to other local users in the process list: prefer --password-file)")
	fs.StringVar(&c.PasswordFile, "password-file", c.PasswordFile, "read the password of --user from this file")
	fs.BoolVar(&c.Debug, "debug", c.Debug, "log the etcd client's activity to stderr")
}

// listValue is a comma-separated list flag.
type listValue []string

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listValue) Set(s string) error {
	*l = splitList(s)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
