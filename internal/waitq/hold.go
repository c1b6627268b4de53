package waitq

import (
	"context"
	"errors"
	"sync"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/obs"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Hold is one acquisition by a waiter (a lock held, a permit, a
// leadership): it knows when it ends. Its methods are safe for concurrent
// use.
//
// Lease loss is followed through the session's shared tracker at no cost
// per hold. Watching the key itself (for a delete by someone else) costs a
// watch per hold, so it starts only when someone asks how the hold is
// doing: [Hold.Done], [Hold.Context] or a primitive's Err ([Handle.Err]),
// never on Lock and Unlock alone. The watch starts from the key's create
// revision, so a delete made before the first such call is still seen, as
// soon as etcd replays it. [Hold.Err] itself starts nothing: the
// primitives' own release paths call it.
type Hold struct {
	w         *Waiter
	done      chan struct{}
	stopLease func() bool

	// ended is cancelled, with why the hold ended as its cause, when done
	// is closed: the parent of nothing, only a signal for [Hold.Context].
	ended  context.Context
	cancel context.CancelCauseFunc

	mu        sync.Mutex // guards err, releasing, stop, exited
	err       error      // why the hold ended; nil while held
	releasing bool       // the owner is deleting the key: a delete is not a loss
	stop      context.CancelFunc
	exited    chan struct{} // closed when the monitor returns; nil if none ran
}

// NewHold starts following a waiter that has just acquired.
func NewHold(w *Waiter) *Hold {
	h := &Hold{w: w, done: make(chan struct{})}
	h.ended, h.cancel = context.WithCancelCause(context.Background())
	h.stopLease = context.AfterFunc(w.tracker.Context(), func() {
		if err := w.tracker.Err(); err != nil {
			h.lose(err)
		}
	})
	return h
}

// Waiter returns the waiter that acquired the hold, for the key and the
// ownership comparison a primitive's methods expose.
func (h *Hold) Waiter() *Waiter { return h.w }

// Err returns nil while held, and why the hold ended after.
func (h *Hold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		// The tracker may have given up a moment before its callback ran.
		return h.w.tracker.Err()
	}
	return h.err
}

// Done returns a channel closed when the hold ends, and starts watching the
// key (once) so that a delete by someone else ends it too.
func (h *Hold) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited == nil && h.err == nil {
		ctx, stop := context.WithCancel(context.Background())
		h.stop, h.exited = stop, make(chan struct{})
		go h.monitor(ctx)
	}
	return h.done
}

// finish records why the hold ended and closes done, once, and reports
// whether this call did.
func (h *Hold) finish(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return false
	}
	h.err = err
	close(h.done)
	h.cancel(err)
	return true
}

// lose ends the hold as lost with err, and reports the loss if it is what
// ended the hold.
func (h *Hold) lose(err error) {
	if h.finish(err) {
		h.reportLost(err)
	}
}

// Report reports how a hold that its owner is ending went: released (with
// the delete's error, releaseErr) when lost is nil, else lost with lost,
// unless the loss was reported already. Call it before [Hold.End]; a
// primitive that ends its holds by other means than [Handle.Release] (a
// queue's Ack or Nack) calls it too.
func (h *Hold) Report(lost, releaseErr error) {
	if !obs.On(h.w.obs) {
		return
	}
	h.mu.Lock()
	reported := h.err != nil // only a loss ends a hold before End
	h.mu.Unlock()
	switch {
	case lost == nil:
		w := h.w
		obs.Released(w.obs, w.kind, w.name, w.rev, w.since, releaseErr)
	case !reported:
		h.reportLost(lost)
	}
}

// reportLost reports the hold as lost with err.
func (h *Hold) reportLost(err error) {
	w := h.w
	obs.Lost(w.obs, w.kind, w.name, w.rev, w.since, err, w.tracker.Err())
}

// Context returns a context derived from parent that is cancelled when the
// hold ends, with why it ended as its cause ([context.Cause]); like Done,
// it starts watching the key. A hold that has ended already gives a
// context that is cancelled already.
func (h *Hold) Context(parent context.Context) context.Context {
	h.Done()
	ctx, cancel := context.WithCancelCause(parent)
	if h.ended.Err() != nil {
		cancel(context.Cause(h.ended))
		return ctx
	}
	// Neither callback outlives the hold or ctx: whichever ends first
	// cancels ctx, and the other callback is then unregistered.
	stop := context.AfterFunc(h.ended, func() { cancel(context.Cause(h.ended)) })
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}

// Releasing tells the hold that its owner is about to delete its key, so
// that the delete, when the monitor sees it, does not end the hold as lost
// before [Hold.End] records why it ended. undo is for a delete that failed
// before it could reach etcd.
func (h *Hold) Releasing() (undo func()) {
	h.mu.Lock()
	h.releasing = true
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		h.releasing = false
		h.mu.Unlock()
	}
}

func (h *Hold) isReleasing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releasing
}

// End stops following the hold, waits for its monitor, and records err as
// why it ended unless it had ended already. It does not touch the key.
func (h *Hold) End(err error) {
	h.stopLease()
	h.mu.Lock()
	stop, exited := h.stop, h.exited
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-exited
	}
	h.finish(err)
}

// monitor ends the hold when the key is deleted or the lease is lost.
func (h *Hold) monitor(ctx context.Context) {
	defer close(h.exited)
	// Every call stops when the lease tracker gives up, even one that etcd
	// never answers.
	ctx, cancel := h.w.Bind(ctx)
	defer cancel()
	own := &mvccpb.KeyValue{Key: []byte(h.w.key), CreateRevision: h.w.rev}
	// The key's create revision is a safe start: every later change to it
	// is after it.
	readRev := h.w.rev
	for {
		err := h.w.WaitDeleteFrom(ctx, own, readRev)
		if err == nil {
			// Deleted, or the watch broke: look at the key itself.
			var resp *clientv3.TxnResponse
			resp, err = h.w.Check(ctx, clientv3.OpGet(h.w.key, clientv3.WithCountOnly()))
			if err == nil {
				h.w.calm()
				readRev = resp.Header.Revision
				continue
			}
		}
		if lerr := h.w.tracker.Err(); lerr != nil {
			h.lose(lerr)
			return
		}
		if errors.Is(err, errs.Lost) && h.isReleasing() {
			// The owner's own delete: End records why the hold ended.
			<-ctx.Done()
			return
		}
		if errors.Is(err, errs.Lost) || errors.Is(err, errs.SessionExpired) {
			h.lose(err)
			return
		}
		if context.Cause(ctx) == context.Canceled && ctx.Err() != nil {
			return // stopped by End
		}
		// A transient failure: without a pause the watch from readRev would
		// replay the same event and the loop would hammer etcd.
		if h.w.pause(ctx) != nil && ctx.Err() != nil {
			return
		}
	}
}
