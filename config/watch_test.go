package config_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/stretchr/testify/require"
)

// recorder collects a watcher's Subscribe calls.
type recorder struct {
	mu    sync.Mutex
	calls [][2]int // old and new max_conns
}

func (r *recorder) on(old, new limits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, [2]int{old.MaxConns, new.MaxConns})
}

func (r *recorder) get() [][2]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][2]int(nil), r.calls...)
}

func publishLimits(t *testing.T, ctx context.Context, name string, n int) int64 {
	t.Helper()
	v, err := config.Publish(ctx, srv.Client(), name, fmt.Appendf(nil, `{"max_conns":%d}`, n))
	require.NoError(t, err)
	return v
}

func TestWatchFollowsPublishes(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	w, err := config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits)
	require.NoError(t, err)
	defer w.Close()
	require.Zero(t, w.Version(), "nothing published yet")
	var r recorder
	unsubscribe := w.Subscribe(r.on)
	v := publishLimits(t, t.Context(), name, 10)
	require.NoError(t, w.WaitFor(within(t), v))
	require.Equal(t, 10, w.Load().MaxConns)
	unsubscribe()
	v = publishLimits(t, t.Context(), name, 20)
	require.NoError(t, w.WaitFor(within(t), v))
	require.Equal(t, [][2]int{{0, 10}}, r.get(), "called after unsubscribe")
	require.False(t, w.Stale())
}

// Valid and invalid values published at random, and garbage forced into
// the current key: the watcher never applies an invalid one, reports each,
// and ends on the last valid version.
func TestWatcherNeverAppliesInvalidValues(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	publishLimits(t, t.Context(), name, 1)
	w, err := config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits)
	require.NoError(t, err)
	defer w.Close()
	var bad sync.Mutex
	var applied []limits
	w.Subscribe(func(_, l limits) { bad.Lock(); applied = append(applied, l); bad.Unlock() })

	for i := range 40 {
		data := fmt.Appendf(nil, `{"max_conns":%d}`, i+2)
		switch rand.IntN(3) {
		case 0:
			data = []byte(`{"max_conns":-1}`) // decodes, refused
		case 1:
			data = []byte("not json")
		}
		// No validator: these are forced past Publish's check.
		_, err := config.Publish(t.Context(), cli, name, data)
		require.NoError(t, err)
	}
	v := publishLimits(t, t.Context(), name, 98)
	require.NoError(t, w.WaitFor(within(t), v))
	require.True(t, drain(w.Errors(), config.ErrInvalid), "no ErrInvalid reported")

	_, err = cli.Put(t.Context(), name+"/current", "raw garbage")
	require.NoError(t, err)
	v = publishLimits(t, t.Context(), name, 99)
	require.NoError(t, w.WaitFor(within(t), v))
	require.Equal(t, 99, w.Load().MaxConns)
	require.True(t, drain(w.Errors(), config.ErrMalformed), "no ErrMalformed reported for the raw Put")
	bad.Lock()
	defer bad.Unlock()
	for _, l := range applied {
		require.Positive(t, l.MaxConns, "an invalid value was applied")
	}
}

// drain empties errc and reports whether one of its errors is target.
func drain(errc <-chan error, target error) bool {
	found := false
	for len(errc) > 0 {
		found = errors.Is(<-errc, target) || found
	}
	return found
}

// Publishes race with the start of Watch: the watch starts at the load's
// revision, so no update is missed. The check interval is so long that
// only the watch, not a periodic read, can deliver the update.
func TestLoadWatchRaceMissesNothing(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	wcli := srv.NewClient(t)
	for i := range 30 {
		done := make(chan int64, 1)
		go func() {
			v, err := config.Publish(t.Context(), cli, name, fmt.Appendf(nil, `{"max_conns":%d}`, i+1))
			if err != nil {
				t.Error(err)
			}
			done <- v
		}()
		w, err := config.Watch(t.Context(), wcli, name, decodeLimits, config.WithCheckInterval(time.Hour))
		require.NoError(t, err)
		v := <-done
		err = w.WaitFor(within(t), v)
		w.Close()
		require.NoError(t, err, "round %d: update missed", i)
	}
}
