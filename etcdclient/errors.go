package etcdclient

import "errors"

var (
	// ErrConfig is returned by [Config.Validate], [Config.ClientConfig] and
	// [Config.New] for a configuration that cannot work (a missing file, a
	// certificate without its key); the message says what to fix.
	ErrConfig = errors.New("etcdclient: invalid configuration")

	// ErrNoPassword is returned by [Config.ClientConfig] and [Config.New]
	// when a user is given without a password, so that a command-line tool
	// can prompt for one.
	ErrNoPassword = errors.New("etcdclient: user given without a password")

	// ErrUnreachable is returned by [Config.New], [Config.Check] and
	// [Config.Probe] when no endpoint answers: the connection is refused, the
	// host name is unknown, or nothing answers in time.
	ErrUnreachable = errors.New("etcdclient: etcd unreachable")

	// ErrTLS is returned by [Config.New], [Config.Check] and [Config.Probe]
	// when the TLS handshake fails on every endpoint: the server's
	// certificate is not trusted, or the server wants a client certificate
	// it was not given or does not accept.
	ErrTLS = errors.New("etcdclient: TLS handshake failed")

	// ErrAuth is returned by [Config.New], [Config.Check] and
	// [Config.Explain] when etcd refuses the user name and password.
	ErrAuth = errors.New("etcdclient: authentication failed")

	// ErrPermission is returned by [Config.Check] and [Config.Explain] when
	// etcd's role-based access control refuses a request on a key.
	ErrPermission = errors.New("etcdclient: permission denied")
)

// causeError is an error with a message for people that matches both a
// sentinel and the error it explains.
type causeError struct {
	kind error
	msg  string
	err  error
}

func (e *causeError) Error() string { return e.msg }

func (e *causeError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}
