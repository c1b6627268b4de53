// Package errs holds the error values that every coordkit primitive shares,
// so that errors.Is matches them whichever package re-exports them.
package errs

import (
	"context"
	"errors"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// SessionExpired reports that the session's lease is gone: expired,
	// revoked, or the session was closed.
	SessionExpired = errors.New("coordkit: session expired")

	// Lost reports that a hold ended without its holder releasing it: its
	// key was deleted by someone else, or the lease's local deadline passed
	// with no successful keep-alive probe, so the server may have expired it.
	Lost = errors.New("coordkit: hold lost")

	// NoAnswer is the error of a request that had no answer within the
	// bound its caller gave it. It is [Transient]: the request may still
	// take effect.
	NoAnswer = errors.New("coordkit: etcd did not answer in time")
)

// Transient reports whether err is one that etcd returns while it elects a
// leader, lacks a quorum or is stopping, or that the client returns while
// it cannot reach a member (gRPC code Unavailable), or while it is
// overloaded ("too many requests", or gRPC code ResourceExhausted other
// than a message over the size limit, which no retry can fix), or
// [NoAnswer]: the request may succeed if sent again. A gRPC
// DeadlineExceeded status is transient too: the client turns it into the
// context's error when the context that bounded the request has ended, so
// one that arrives as a status comes from a bound the caller did not see
// end (a request whose deadline passed just before its context's timer
// fired, under load). Context errors themselves are not transient. A write
// that failed so may still have been applied, or be applied later: only a
// caller that can tell, or whose write is harmless twice, may send it
// again. A loop that retries on Transient must still stop when its
// context ends.
func Transient(err error) bool {
	if errors.Is(err, NoAnswer) || errors.Is(err, rpctypes.ErrTooManyRequests) {
		return true
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	switch st, _ := status.FromError(err); st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.ResourceExhausted:
		return !strings.Contains(st.Message(), "larger than max")
	}
	return false
}

// Refused reports whether etcd refused a request because of who sent it:
// the user's role does not cover the key (RBAC), or the credentials were
// rejected. Sending it again as the same user cannot succeed, so a loop
// that retries etcd's errors returns this one at once.
func Refused(err error) bool {
	if errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrAuthFailed) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.PermissionDenied
	}
	return status.Code(err) == codes.PermissionDenied
}
