package config_test

import (
	"path/filepath"
	"testing"

	"github.com/coordkit/coordkit/config"
	"github.com/stretchr/testify/require"
)

// A current value that does not decode at Watch time is never applied:
// the watcher starts from the newest good version in the history, else
// from the snapshot file, else Watch fails with ErrInvalid.
func TestWatchStartsFromLastGoodValue(t *testing.T) {
	t.Parallel()
	publish := func(t *testing.T, name, data string, opts ...config.Option) int64 {
		t.Helper()
		v, err := config.Publish(t.Context(), srv.Client(), name, []byte(data), opts...)
		require.NoError(t, err)
		return v
	}

	t.Run("history", func(t *testing.T) {
		t.Parallel()
		name := testName(t, srv.Client())
		publish(t, name, `{"max_conns":1}`)
		good := publish(t, name, `{"max_conns":2}`)
		publish(t, name, `{"max_conns":-1}`)
		publish(t, name, `{bad`)
		w, err := config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits)
		require.NoError(t, err)
		defer w.Close()
		require.Equal(t, good, w.Version())
		require.Equal(t, 2, w.Load().MaxConns)
		select {
		case err := <-w.Errors():
			require.ErrorIs(t, err, config.ErrInvalid)
		default:
			t.Fatal("Errors() has no report of the current value refused")
		}
		// A later good publish applies as usual.
		v := publishLimits(t, within(t), name, 7)
		require.NoError(t, w.WaitFor(within(t), v))
		require.Equal(t, 7, w.Load().MaxConns)
	})

	t.Run("snapshot", func(t *testing.T) {
		t.Parallel()
		name := testName(t, srv.Client())
		file := filepath.Join(t.TempDir(), "snap")
		good := publish(t, name, `{"max_conns":3}`)
		w, err := config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits, config.WithSnapshotFile(file))
		require.NoError(t, err)
		w.Close()
		publish(t, name, `{bad`, config.WithRetention(1))
		w, err = config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits, config.WithSnapshotFile(file))
		require.NoError(t, err)
		defer w.Close()
		require.Equal(t, good, w.Version())
		require.Equal(t, 3, w.Load().MaxConns)
		require.False(t, w.Stale(), "etcd was read")
	})

	t.Run("none", func(t *testing.T) {
		t.Parallel()
		name := testName(t, srv.Client())
		publish(t, name, `{"max_conns":0}`)
		publish(t, name, `{bad`)
		w, err := config.Watch(t.Context(), srv.NewClient(t), name, decodeLimits)
		if err == nil {
			w.Close()
		}
		require.ErrorIs(t, err, config.ErrInvalid, "Watch() version %d", func() int64 {
			if w == nil {
				return 0
			}
			return w.Version()
		}())
	})
}
