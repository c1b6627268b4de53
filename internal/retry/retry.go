// Package retry paces every coordkit loop that re-establishes a broken
// watch or retries a failed request, so that a failing member is not
// hammered: exponential backoff with jitter from
// github.com/cenkalti/backoff/v4, from 10 ms growing by half each time up
// to 1 s, never giving up on its own (the caller's context does). [Between]
// is for the pacing a user sets (stm's conflicts, election.Run's terms).
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
	// The options are applied before the backoff's Reset, which sets the
	// first interval: fields set afterwards would leave it at the
	// library's 500 ms until the first Reset.
	return &Pacer{b: backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second),
		backoff.WithMaxElapsedTime(0))}
}

// Between returns a pacer whose first pause is about initial and doubles
// up to max, each drawn between half and one and a half times the current
// interval, for a caller whose user sets its pacing (stm's conflicts). With
// initial 0 it never pauses.
func Between(initial, max time.Duration) *Pacer {
	return &Pacer{b: backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(max),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0))}
}

// Pause waits before the next attempt after a failure, or returns
// ctx.Err() if ctx ends first. Each pause is longer than the last.
func (p *Pacer) Pause(ctx context.Context) error {
	return p.PauseOr(ctx, nil, nil)
}

// PauseOr is Pause that also ends early when stop is closed, returning
// stopErr().
func (p *Pacer) PauseOr(ctx context.Context, stop <-chan struct{}, stopErr func() error) error {
	d := p.b.NextBackOff()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
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

// Next returns how long the next pause would be, counting it as taken, for
// a caller that waits in its own select (the lease tracker).
func (p *Pacer) Next() time.Duration { return p.b.NextBackOff() }

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
