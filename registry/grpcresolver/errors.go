package grpcresolver

import (
	"errors"

	"github.com/coordkit/coordkit/registry"
)

var (
	// ErrNoData is what the resolver reports to its ClientConn while it
	// has not read the service's instances once and etcd cannot be
	// reached: calls that do not wait for readiness fail with it, wrapped
	// in gRPC's Unavailable, until the first read succeeds.
	ErrNoData = errors.New("grpcresolver: etcd cannot be reached and no instances were read yet")

	// ErrNoService is returned by [Builder.Build] for a target that names
	// no service.
	ErrNoService = errors.New("grpcresolver: target names no service")

	// ErrClosed is what the resolver reports to its ClientConn when the
	// etcd client it follows the service through was closed. It is
	// [registry.ErrClosed].
	ErrClosed = registry.ErrClosed
)
