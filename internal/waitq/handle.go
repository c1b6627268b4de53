package waitq

import (
	"context"
	"sync"

	"github.com/coordkit/coordkit/internal/errs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Handle is the state a primitive's handle keeps between calls: at most one
// hold at a time, taken in turn by the goroutines that share the handle, and
// the last hold, so that Done and Err still answer after it ended. Its
// methods are safe for concurrent use.
type Handle struct {
	// turn has room for one token: the goroutine that put it there is
	// acquiring or holds through this handle.
	turn   chan struct{}
	closed chan struct{} // always closed: Done before the first hold

	mu      sync.Mutex // guards hold, last, retired
	hold    *Hold      // the current hold, nil when none
	last    *Hold      // the most recent hold, for Done after it ends
	retired bool       // a release failed: its delete may still arrive late
}

// NewHandle returns a handle that holds nothing.
func NewHandle() *Handle {
	closed := make(chan struct{})
	close(closed)
	return &Handle{turn: make(chan struct{}, 1), closed: closed}
}

// Enter takes the handle's turn. With wait it blocks until the goroutine
// holding through the handle gives it back or ctx is done (ctx.Err());
// without, it returns [ErrWouldWait] at once if the turn is taken. A nil
// return must be followed by [Handle.Start] or [Handle.Exit].
func (h *Handle) Enter(ctx context.Context, wait bool) error {
	if !wait {
		select {
		case h.turn <- struct{}{}:
			return nil
		default:
			return ErrWouldWait
		}
	}
	select {
	case h.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exit gives the turn back after an acquisition that failed.
func (h *Handle) Exit() { <-h.turn }

// Start records that w has just acquired: its hold is the handle's current
// one until [Handle.Release].
func (h *Handle) Start(w *Waiter) {
	hold := NewHold(w)
	h.mu.Lock()
	h.hold = hold
	h.mu.Unlock()
}

// Current returns the current hold, or nil.
func (h *Handle) Current() *Hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hold
}

// Release ends the current hold if match accepts it (a nil match accepts
// any): it deletes the hold's key with [Waiter.Release] (guarded by its
// create revision, so that a late or repeated release never deletes a newer
// hold's key; handed to the session's janitor if etcd cannot be reached),
// records ended as why the hold ended, and gives the turn back. The hold
// ends locally whatever the delete does. ok is false, and nothing is
// touched, when there is no current hold or match rejects it. lost is why
// the hold had ended before this call, if it had, including a key found
// already gone; err is the delete's error.
func (h *Handle) Release(ctx context.Context, ended error, match func(*Hold) bool) (ok bool, lost, err error) {
	hold := h.claim(match)
	if hold == nil {
		return false, nil, nil
	}
	lost = hold.Err()
	hold.Releasing() // the hold ends with ended whatever the delete does
	existed, err := hold.w.Release(ctx)
	if err == nil && !existed && lost == nil {
		// The key was already gone: the hold had been lost unseen.
		if lost = hold.w.tracker.Err(); lost == nil {
			lost = errs.Lost
		}
	}
	hold.Report(lost, err)
	hold.End(ended)
	h.mu.Lock()
	h.retired = h.retired || err != nil
	h.mu.Unlock()
	h.Exit()
	return true, lost, err
}

// Drop ends hold if it is still the current one, for a handle that starts
// over after a loss: it deletes the key with [Waiter.Leave] (skipped when
// the lease is gone, bounded by [CleanupTimeout] otherwise, so a lost
// hold's cleanup never holds up what comes next), records ended and gives
// the turn back. It reports whether it ended hold; false means a
// concurrent release had already done so.
func (h *Handle) Drop(ctx context.Context, hold *Hold, ended error) bool {
	if h.claim(func(cur *Hold) bool { return cur == hold }) == nil {
		return false
	}
	hold.Report(hold.Err(), nil)
	hold.w.Leave(ctx)
	hold.End(ended)
	h.Exit()
	return true
}

// claim takes the current hold away from the handle, if there is one and
// match accepts it (a nil match accepts any), and makes it the last hold.
// Ending a hold claims it before touching etcd: of two concurrent releases
// only one may delete the key and give the turn back, or the second could
// delete, and take the turn of, a hold taken in between.
func (h *Handle) claim(match func(*Hold) bool) *Hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	hold := h.hold
	if hold == nil || (match != nil && !match(hold)) {
		return nil
	}
	h.hold, h.last = nil, hold
	return hold
}

// KeyRetired reports, once, whether a release through the handle failed
// since the last call. Its delete request may then still reach etcd late,
// so a handle whose releases are [Unguarded] must take a new key
// before it joins again. Call it with the turn held.
func (h *Handle) KeyRetired() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.retired
	h.retired = false
	return r
}

// Done returns the current hold's Done channel; with no current hold, the
// last hold's (closed) channel, or a closed channel before the first hold.
func (h *Handle) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.hold != nil:
		return h.hold.Done()
	case h.last != nil:
		return h.last.Done()
	}
	return h.closed
}

// Context returns the current hold's [Hold.Context]; with no current hold,
// a context derived from parent that is cancelled already, with notHeld
// as its cause.
func (h *Handle) Context(parent context.Context, notHeld error) context.Context {
	if hold := h.Current(); hold != nil {
		return hold.Context(parent)
	}
	ctx, cancel := context.WithCancelCause(parent)
	cancel(notHeld)
	return ctx
}

// Err returns nil while a hold lasts, why it ended once it was lost, and
// notHeld when there is no current hold. Like Done, it starts watching the
// current hold's key (see [Hold]), so that a delete by someone else shows
// in Err too.
func (h *Handle) Err(notHeld error) error {
	if hold := h.Current(); hold != nil {
		hold.Done()
		return hold.Err()
	}
	return notHeld
}

// Token returns the current hold's create revision, or 0.
func (h *Handle) Token() int64 {
	if hold := h.Current(); hold != nil {
		return hold.w.rev
	}
	return 0
}

// Key returns the current hold's key, or "".
func (h *Handle) Key() string {
	if hold := h.Current(); hold != nil {
		return hold.w.key
	}
	return ""
}

// IsOwner returns the comparison that holds while the current hold's key
// exists with its create revision, or one that is never true (a create
// revision of -1 for key) when there is no current hold.
func (h *Handle) IsOwner(key string) clientv3.Cmp {
	if hold := h.Current(); hold != nil {
		return hold.w.IsOwner()
	}
	return clientv3.Compare(clientv3.CreateRevision(key), "=", -1)
}
