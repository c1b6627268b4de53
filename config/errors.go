package config

import (
	"errors"

	"github.com/coordkit/coordkit/internal/errs"
)

var (
	// ErrInvalid is returned by [Publish] and [Rollback] when the validator
	// given with [WithValidator] refuses the value; nothing is written. A
	// [Watcher] sends it on [Watcher.Errors] for a value that fails to
	// decode or validate, which it does not apply. [Watch] returns it when
	// neither the current value nor a recent version nor the snapshot
	// file holds a good value.
	ErrInvalid = errors.New("config: invalid value")

	// ErrConflict is returned by [Publish] and [Rollback] with
	// [WithExpectedVersion] when the current version is not the expected
	// one: someone else published since the caller read it. They also
	// return it, with or without that option, when they gave up because
	// their transaction kept failing while nothing was published.
	ErrConflict = errors.New("config: version conflict")

	// ErrTooLarge is returned by [Publish] and [Rollback], before anything
	// is sent, when the write would exceed etcd's request size limit.
	ErrTooLarge = errors.New("config: value too large")

	// ErrNotFound is returned by [Get] when the name has no value, and by
	// [Rollback] when the version is not in the history (never published,
	// or dropped by [WithRetention]).
	ErrNotFound = errors.New("config: not found")

	// ErrMalformed is returned by [Get] and [History], and sent on
	// [Watcher.Errors], for a key under the name that does not hold a
	// record written by [Publish] (something wrote it directly).
	ErrMalformed = errors.New("config: malformed record")

	// ErrRefused is returned by every call that etcd refused because of who
	// sent it: the client's user has no role granting the access the call
	// needs on the name's prefix. The error also wraps etcd's own error.
	ErrRefused = errors.New("config: refused by etcd's access control")

	// ErrClosed is returned by [Watcher.Err], and by [Watcher.WaitFor],
	// once the watcher stopped because [Watcher.Close] was called.
	ErrClosed = errors.New("config: watcher closed")

	// ErrClientClosed is returned by [Watcher.Err] when the watcher stopped
	// because its etcd client was closed. It is the same value in every
	// coordkit package.
	ErrClientClosed = errs.Closed
)
