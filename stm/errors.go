package stm

import (
	"errors"
	"fmt"
	"strings"
)

// ErrConflict is the cause of a failed commit: a key the attempt read (or,
// under [SerializableSnapshot], wrote) changed before the commit. [Run]
// retries conflicts itself; callers see ErrConflict only wrapped in
// [ErrTooManyAttempts] or in a context error.
var ErrConflict = errors.New("stm: conflict")

// ErrTooManyAttempts is returned by [Run] when the function has run as many
// times as [WithMaxAttempts] allows without a commit. The error also wraps
// the cause of the last failure, such as [ErrConflict].
var ErrTooManyAttempts = errors.New("stm: too many attempts")

// ErrUncertain is returned by [Run] when a commit was sent but its outcome
// could not be learned: the context ended while it was in flight, the
// connection failed and resending it found that the keys had changed
// (perhaps because the first one took effect), or the connection failed and
// the commit could not be resent safely because some key it writes is not
// compared (ReadCommitted, or a write of a key not read). The transaction may or may not
// have committed, and was committed at most once. The error also wraps the
// cause.
var ErrUncertain = errors.New("stm: commit outcome unknown")

// ErrTxDone is returned by the read methods of a [Tx] used after its
// function returned.
var ErrTxDone = errors.New("stm: transaction used after its function returned")

// ErrPanic matches, with errors.Is, the [*PanicError] that [Run] returns when
// the function panics.
var ErrPanic = errors.New("stm: transaction function panicked")

// PanicError is returned by [Run] when the transaction function panicked.
// Nothing of that attempt was committed.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack at the time of the panic.
	Stack []byte
}

// Error returns "stm: transaction function panicked: " and the value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%v: %v", ErrPanic, e.Value)
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error, so that
// errors.Is(err, io.EOF) holds after panic(io.EOF); otherwise nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// innerError is an error of this package wrapped inside another one: it
// prints without its "stm: " prefix, so that a message names the package
// once ("stm: too many attempts (3): conflict"), and unwraps to the error
// itself for errors.Is and errors.As.
type innerError struct{ err error }

func inner(err error) error {
	if err == nil {
		return nil
	}
	return innerError{err}
}

func (e innerError) Error() string { return strings.TrimPrefix(e.err.Error(), "stm: ") }

func (e innerError) Unwrap() error { return e.err }
