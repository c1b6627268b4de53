package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestPausesGrowAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New()
		var last time.Duration
		for i := range 8 {
			start := time.Now()
			if err := p.Pause(t.Context()); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			if d > time.Second+time.Second/2 {
				t.Fatalf("pause %d = %v, beyond the 1 s cap plus jitter", i, d)
			}
			last = d
		}
		// The first pause is 10 ms ±50%; the 8th, 10 ms × 1.5^7 ±50%, is
		// at least 85 ms.
		if last < 50*time.Millisecond {
			t.Fatalf("8th pause = %v: not growing", last)
		}
		p.Reset()
		start := time.Now()
		p.Pause(t.Context())
		if d := time.Since(start); d > 20*time.Millisecond {
			t.Fatalf("pause after Reset = %v, want about 10 ms", d)
		}
	})
}

func TestPauseStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New().Pause(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pause = %v", err)
	}
	stop := make(chan struct{})
	close(stop)
	errStop := errors.New("stopped")
	if err := New().PauseOr(context.Background(), stop, func() error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("PauseOr = %v", err)
	}
}

func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		err := Do(t.Context(), func(context.Context) error {
			n++
			if n < 3 {
				return rpctypes.ErrTimeout
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Fatalf("Do() = %v after %d attempts, want nil after 3", err, n)
		}
		n = 0
		err = Do(t.Context(), func(context.Context) error { n++; return rpctypes.ErrLeaseNotFound })
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) || n != 1 {
			t.Fatalf("Do() = %v after %d attempts, want ErrLeaseNotFound after 1", err, n)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		err = Do(ctx, func(context.Context) error { return rpctypes.ErrNoLeader })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do() = %v, want the context's error", err)
		}
	})
}

// TestFirstPauseIsShort: a new pacer's first pause is about 10 ms (with
// jitter), as its doc says, not the backoff library's default 500 ms.
func TestFirstPauseIsShort(t *testing.T) {
	for range 20 {
		if d := New().b.NextBackOff(); d <= 0 || d > 20*time.Millisecond {
			t.Fatalf("first pause of a new pacer = %v, want about 10 ms", d)
		}
	}
}
