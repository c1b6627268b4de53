// Package errs holds the error values that every coordkit primitive shares,
// so that errors.Is matches them whichever package re-exports them.
package errs

import "errors"

var (
	// SessionExpired reports that the session's lease is gone: expired,
	// revoked, or the session was closed.
	SessionExpired = errors.New("coordkit: session expired")

	// Lost reports that a hold ended without its holder releasing it: its
	// key was deleted by someone else, or the lease's local deadline passed
	// with no successful keep-alive probe, so the server may have expired it.
	Lost = errors.New("coordkit: hold lost")
)
