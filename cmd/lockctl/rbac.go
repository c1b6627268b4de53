package main

import "github.com/coordkit/coordkit/internal/errs"

// refused returns err as an ExitUnavailable error that names the key etcd
// refused to let this user op ("read", "write", ...) and says it is an
// etcd RBAC matter, or nil if err is not such a refusal.
func refused(c *config, op, key string, err error) error {
	if !errs.Refused(err) {
		return nil
	}
	return withCode(ExitUnavailable, c.Explain(err, op, key))
}

// keyPrefix is the prefix under which a primitive called name keeps its
// keys: name and "/", whatever name ends with, as the library's and etcd's
// constructors make it.
func keyPrefix(name string) string { return name + "/" }
