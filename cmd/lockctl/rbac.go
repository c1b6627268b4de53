package main

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusedError is etcd refusing a request because the user's roles do not
// cover its keys (etcd RBAC), as opposed to wrong credentials.
type refusedError struct {
	op  string // what lockctl tried: "read", "write", "revoke the lease of"
	key string // the key or prefix refused
	err error
}

func (e *refusedError) Error() string {
	grant := e.key
	if i := strings.IndexByte(e.key, '/'); i > 0 {
		grant = e.key[:i+1]
	}
	return fmt.Sprintf("etcd refused to %s %s for this user (permission denied by etcd RBAC): grant its role readwrite on that prefix, e.g. etcdctl role grant-permission --prefix=true ROLE readwrite %s",
		e.op, e.key, grant)
}

func (e *refusedError) Unwrap() error { return e.err }

// isRefused reports whether err is etcd's "permission denied".
func isRefused(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || status.Code(err) == codes.PermissionDenied
}

// refused returns err as an ExitUnavailable error that names key and says
// it is an RBAC matter, or nil if err is not a permission error.
func refused(op, key string, err error) error {
	if !isRefused(err) {
		return nil
	}
	return withCode(ExitUnavailable, &refusedError{op: op, key: key, err: err})
}

// keyPrefix is the prefix under which a primitive called name keeps its
// keys (one trailing slash, as the library's constructors make it).
func keyPrefix(name string) string { return strings.TrimRight(name, "/") + "/" }
