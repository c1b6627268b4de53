package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// forwarded are the signals lockctl passes on to a running command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// signalRouter receives the signals in forwarded for the whole life of
// lockctl and routes each one: while a command runs, to the channel its
// runner gave [signalRouter.divert]; at any other time, to cancelling the
// context newSignalRouter returned, which ends a wait to acquire. So a
// signal meant for the command never cancels that context, and a signal
// that comes between two phases is never lost.
type signalRouter struct {
	ch     chan os.Signal
	cancel context.CancelFunc
	done   chan struct{} // closed when the routing goroutine has returned

	mu sync.Mutex       // guards to
	to chan<- os.Signal // nil: cancel
}

type routerKey struct{}

// newSignalRouter starts routing the process's signals. The returned
// context carries the router, for runChild, and is cancelled by the first
// signal that comes while no command runs. stop ends the routing.
func newSignalRouter(parent context.Context) (*signalRouter, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	r := &signalRouter{ch: make(chan os.Signal, 8), cancel: cancel, done: make(chan struct{})}
	signal.Notify(r.ch, forwarded...)
	go r.route()
	return r, context.WithValue(ctx, routerKey{}, r)
}

func (r *signalRouter) route() {
	defer close(r.done)
	for sig := range r.ch {
		r.mu.Lock()
		if r.to != nil {
			select {
			case r.to <- sig:
			default: // the command has a backlog of signals already
			}
		} else {
			r.cancel()
		}
		r.mu.Unlock()
	}
}

// divert sends the signals to ch until the returned function is called.
// A signal routed before divert has cancelled the router's context by the
// time divert returns, so the caller can check ctx.Err() afterwards.
func (r *signalRouter) divert(ch chan<- os.Signal) (restore func()) {
	r.mu.Lock()
	r.to = ch
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.to = nil
		r.mu.Unlock()
	}
}

// stop stops the routing and waits for its goroutine.
func (r *signalRouter) stop() {
	signal.Stop(r.ch)
	close(r.ch)
	<-r.done
	r.cancel()
}

// routerFrom returns the router ctx carries, or nil (run called by a Go
// test: no process signals are handled, and cancelling ctx is the signal).
func routerFrom(ctx context.Context) *signalRouter {
	r, _ := ctx.Value(routerKey{}).(*signalRouter)
	return r
}
