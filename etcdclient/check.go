package etcdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// alertWait is how long the probe waits after a TLS handshake for the
// server to reject the client's certificate (TLS 1.3 sends that alert only
// after the handshake). A gRPC server speaks first, so a healthy one ends
// the wait at once.
const alertWait = time.Second

// Check makes a first request, a count-only Get of key, with [Config.First].
// key should be one the caller is going to use: a user's role may allow
// nothing else.
func (c Config) Check(ctx context.Context, cli *clientv3.Client, key string) error {
	return c.First(ctx, "read", key, func(ctx context.Context) error {
		_, err := cli.Get(ctx, key, clientv3.WithCountOnly())
		return err
	})
}

// First runs req, a program's first request to etcd, and probes the
// endpoints at the same time ([Config.Probe]), so that a failure is told in
// words and quickly: when every endpoint refuses the connection, has an
// unknown host name or fails the TLS handshake, First returns that within
// about a second instead of waiting for req's timeout. Otherwise req's
// error is explained ([Config.Explain], with verb and key). req gets a
// context that ends after DialTimeout+CommandTimeout, or as soon as the
// probe has failed. Errors wrap [ErrUnreachable], [ErrTLS], [ErrAuth] or
// [ErrPermission].
func (c Config) First(ctx context.Context, verb, key string, req func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout+c.CommandTimeout)
	defer cancel()
	rerr, perr := c.alongsideProbe(ctx, cancel, func() error { return req(ctx) })
	switch {
	case rerr == nil:
		return nil
	case perr != nil:
		return perr
	}
	return c.Explain(rerr, verb, key)
}

// alongsideProbe runs req and [Config.Probe] (bounded by ctx) at the same
// time. A probe that fails on every endpoint calls abort, which must end
// req, so that a conclusive network or TLS failure does not wait for req's
// timeout. It returns req's error and the probe's failure, nil if the
// probe passed or was cut short.
func (c Config) alongsideProbe(ctx context.Context, abort func(), req func() error) (reqErr, probeErr error) {
	done := make(chan error, 1)
	go func() { done <- req() }()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	probe := make(chan error, 1)
	go func() { probe <- c.Probe(pctx) }()
	select {
	case reqErr = <-done:
		if reqErr == nil {
			pcancel()
		}
		probeErr = <-probe
	case probeErr = <-probe:
		if probeErr != nil {
			abort()
		}
		reqErr = <-done
	}
	if errors.Is(probeErr, context.Canceled) || errors.Is(probeErr, context.DeadlineExceeded) {
		probeErr = nil
	}
	return reqErr, probeErr
}

// Explain turns the error of a request about key into one that says what
// went wrong in words and wraps a sentinel: etcd's permission denied
// becomes [ErrPermission] naming the user, verb ("read", "write") and key;
// a refused password [ErrAuth]; a request that found no etcd
// [ErrUnreachable]. Other errors are returned as they are.
func (c Config) Explain(err error, verb, key string) error {
	if err == nil {
		return nil
	}
	user, _, _ := strings.Cut(c.User, ":")
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied), status.Code(err) == codes.PermissionDenied:
		who := "this etcd user"
		if user != "" {
			who = "etcd user " + user
		}
		grant := key
		if i := strings.IndexByte(key, '/'); i > 0 {
			grant = key[:i+1]
		}
		return &causeError{kind: ErrPermission, err: err, msg: fmt.Sprintf(
			"%s may not %s %s (permission denied by etcd RBAC): grant its role readwrite on that prefix, e.g. etcdctl role grant-permission --prefix=true ROLE readwrite %s",
			who, verb, key, grant)}
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrUserNotFound),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), status.Code(err) == codes.Unauthenticated:
		return &causeError{kind: ErrAuth, err: err, msg: fmt.Sprintf(
			"etcd refused user %q: %v (check --user and --password)", user, err)}
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded, status.Code(err) == codes.Unavailable:
		return &causeError{kind: ErrUnreachable, err: err, msg: fmt.Sprintf(
			"etcd at %s did not answer: %v (is etcd running there?)", strings.Join(c.Endpoints, ","), err)}
	}
	return err
}

// Probe connects to every endpoint directly, as the client would (TCP,
// then the TLS handshake with the same certificates and ALPN "h2"), and
// returns nil as soon as one endpoint accepts. When every endpoint fails,
// the error tells why for each, wrapping [ErrTLS] if any failed in TLS and
// [ErrUnreachable] otherwise. An endpoint that does not fail within
// DialTimeout counts as accepting: it may be slow, not wrong.
func (c Config) Probe(ctx context.Context) error {
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan error, len(c.Endpoints))
	for _, ep := range c.Endpoints {
		go func() { results <- c.probeOne(ctx, ep, tc) }()
	}
	var errs []error
	var ok bool
	for range c.Endpoints {
		err := <-results
		if err == nil && !ok {
			ok = true
			cancel() // the rest need not finish
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if ok {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	kind := ErrUnreachable
	msgs := make([]string, len(errs))
	for i, e := range errs {
		if errors.Is(e, ErrTLS) {
			kind = ErrTLS
		}
		msgs[i] = e.Error()
	}
	return &causeError{kind: kind, err: errors.Join(errs...), msg: strings.Join(msgs, "; ")}
}

// probeOne returns nil if ep accepts a connection (or does not fail in
// time), and an error saying why it does not otherwise.
func (c Config) probeOne(ctx context.Context, ep string, tc *tls.Config) error {
	addr, scheme, err := hostPort(ep)
	if err != nil || scheme == "unix" {
		return nil // Validate reports bad endpoints; sockets are not probed
	}
	ctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return unreachable(ep, err)
	}
	defer conn.Close()
	if scheme == "http" || (scheme == "" && tc == nil) {
		return nil
	}
	cfg := &tls.Config{}
	if tc != nil {
		cfg = tc.Clone()
	}
	cfg.NextProtos = []string{"h2"}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tconn := tls.Client(conn, cfg)
	if err := tconn.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.tlsFailure(ep, err)
	}
	// TLS 1.3 servers reject a client certificate (or its absence) only
	// after the handshake: read what the server says first.
	tconn.SetReadDeadline(time.Now().Add(alertWait))
	_, err = tconn.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &ne) && ne.Timeout(), ctx.Err() != nil:
		return nil
	case errors.Is(err, io.EOF):
		return &causeError{kind: ErrTLS, err: err, msg: fmt.Sprintf(
			"etcd at %s closed the connection after the TLS handshake (does it want a client certificate? give --cert and --key)", ep)}
	}
	return c.tlsFailure(ep, err)
}

func unreachable(ep string, err error) error {
	msg := err.Error()
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		msg = "no such host (check the host name in --endpoints)"
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = "connection refused (is etcd running there, on that port?)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		msg = "no route to the host: " + msg
	}
	return &causeError{kind: ErrUnreachable, err: err, msg: fmt.Sprintf("etcd at %s: %s", ep, msg)}
}

// tlsFailure explains a failed handshake or a TLS alert.
func (c Config) tlsFailure(ep string, err error) error {
	// A TLS alert from the server comes as a *net.OpError "remote error"
	// around an unexported type: only its text tells which alert it is.
	remote := func(alert string) bool { return strings.Contains(err.Error(), "remote error: tls: "+alert) }
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var rec tls.RecordHeaderError
	hint := "check --cacert, --cert and --key"
	switch {
	case errors.As(err, &unknown), errors.As(err, new(*tls.CertificateVerificationError)) && strings.Contains(err.Error(), "unknown authority"):
		if c.CACert == "" {
			hint = "give --cacert with the CA that signed etcd's certificate"
		} else {
			hint = fmt.Sprintf("--cacert %s did not sign etcd's certificate", c.CACert)
		}
	case errors.As(err, &host):
		hint = "etcd's certificate is not for this host name: use a name or address it lists"
	case errors.As(err, &rec):
		hint = "the server does not speak TLS there: use an http:// endpoint"
	case remote("certificate required"), remote("bad certificate"):
		if c.Cert == "" {
			hint = "the server wants a client certificate: give --cert and --key"
		} else {
			hint = fmt.Sprintf("the server does not accept the client certificate %s: give one signed by its CA", c.Cert)
		}
	case remote("unknown certificate authority"):
		hint = fmt.Sprintf("the server does not accept the client certificate %s: give one signed by its CA", c.Cert)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return unreachable(ep, err)
	}
	return &causeError{kind: ErrTLS, err: err, msg: fmt.Sprintf("etcd at %s: TLS handshake failed: %v (%s)", ep, err, hint)}
}
