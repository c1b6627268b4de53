package main

import (
	"errors"
	"fmt"
)

// Exit codes. The child's own exit code is passed through when it ran.
const (
	// ExitOK: the command ran and exited 0 (or a non-run command worked).
	ExitOK = 0
	// ExitUsage: bad flags or arguments, or release of a name whose keys
	// are not holds; the message says what to fix.
	ExitUsage = 64
	// ExitUnavailable: etcd could not be reached in time, refused the TLS
	// credentials or user name and password, or refused a key to the user
	// (etcd RBAC: the message names the key and the grant that is missing);
	// for dev, etcd could not start.
	ExitUnavailable = 69
	// ExitInternal: an unexpected error in lockctl itself.
	ExitInternal = 70
	// ExitConflict is the default --conflict-exit-code: the hold was not
	// acquired within --wait (EX_TEMPFAIL, as flock -E suggests).
	ExitConflict = 75
	// ExitLost: the hold was lost while the command ran; the command was
	// sent TERM (then KILL after --kill-grace).
	ExitLost = 76
	// ExitInterrupted: lockctl was interrupted while connecting to etcd or
	// waiting to acquire.
	ExitInterrupted = 130
)

const exitCodesHelp = `Exit codes:
  the command's own   when it ran (128+N if it was killed by signal N)
  75                  not acquired within --wait (change with --conflict-exit-code)
  76                  the hold was lost while the command ran; it was sent TERM, then KILL
  69                  etcd unreachable, TLS / authentication failed, or a key refused by etcd RBAC
  64                  usage error (also: release of keys that are not holds)
  70                  internal error
  130                 interrupted while connecting or waiting to acquire`

// exitError carries an exit code with the message lockctl prints.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func usagef(format string, args ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, args...))
}

// codeOf returns the exit code for err.
func codeOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitInternal
}
