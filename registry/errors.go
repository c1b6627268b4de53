package registry

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrDeregistered is returned by [Registration.Err] after
	// [Registration.Deregister], and by Update, SetState and a second
	// Deregister.
	ErrDeregistered = errors.New("registry: deregistered")

	// ErrClosed is returned by [Registration.Err] and [View.Err] when the
	// etcd client was closed under them: nothing can be kept registered or
	// followed through it. It is the same value in every coordkit package.
	ErrClosed = errs.Closed

	// ErrSessionExpired is returned by [Registration.Err] when the session
	// given with [WithSession] ends: its lease belongs to the caller, so the
	// registration cannot grant another. It is the same value in every
	// coordkit package.
	ErrSessionExpired = errs.SessionExpired
)
