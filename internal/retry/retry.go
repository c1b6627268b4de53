// Package retry paces the loops that re-establish a broken watch or retry
// a failed read, so that a failing member is not hammered: exponential
// backoff with jitter from github.com/cenkalti/backoff/v4, 10 ms doubling
// to 1 s, never giving up on its own (the caller's context does).
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coordkit/coordkit/internal/errs"
)

// Pacer spaces out consecutive failures. The zero value is not ready: use
// [New]. It is not safe for concurrent use.
type Pacer struct {
	b backoff.BackOff
}

// New returns a pacer whose first pause is about 10 ms.
func New() *Pacer {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 10 * time.Millisecond
	b.MaxInterval = time.Second
	b.MaxElapsedTime = 0
	return &Pacer{b: b}
}

// Pause waits before the next attempt after a failure, or returns
// ctx.Err() if ctx ends first. Each pause is longer than the last.
func (p *Pacer) Pause(ctx context.Context) error {
	return p.PauseOr(ctx, nil, nil)
}

// PauseOr is Pause that also ends early when stop is closed, returning
// stopErr().
func (p *Pacer) PauseOr(ctx context.Context, stop <-chan struct{}, stopErr func() error) error {
	t := time.NewTimer(p.b.NextBackOff())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return stopErr()
	case <-t.C:
		return nil
	}
}

// Reset makes the next pause short again, after a success.
func (p *Pacer) Reset() { p.b.Reset() }

// Do runs f until it returns nil or an error that is not [errs.Transient],
// pacing the attempts with a new [Pacer], and returns f's last error, or
// ctx.Err() if ctx ends during a pause. f must be safe to run again after
// a transient error, which may have left its request applied: a read, or a
// write guarded so that it does nothing the second time.
func Do(ctx context.Context, f func(context.Context) error) error {
	var p *Pacer
	for {
		err := f(ctx)
		if !errs.Transient(err) {
			return err
		}
		if p == nil {
			p = New()
		}
		if err := p.Pause(ctx); err != nil {
			return err
		}
	}
}
