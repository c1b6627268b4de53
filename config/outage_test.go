package config_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
)

// The watcher's member goes down while the others compact: when it comes
// back the watch resumes below the compaction and relists. A relist with
// nothing new calls no subscriber; one with news calls it once.
func TestCompactionRelistCallsSubscribersOnce(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewCluster(t, 3)
	name := "compact/app"
	pub := func(n int) int64 {
		t.Helper()
		cli := own.NewClient(t)
		v, err := config.Publish(within(t), cli, name, []byte(`{"max_conns":`+string(rune('0'+n))+`}`))
		require.NoError(t, err)
		return v
	}
	pub(1)
	w, err := config.Watch(t.Context(), own.ProxyClient(t, 1), name, decodeLimits, config.WithCheckInterval(100*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()
	var r recorder
	w.Subscribe(r.on)
	outage := func(during func()) {
		t.Helper()
		own.Member(1).Stop()
		eventually(t, "Stale", w.Stale)
		during()
		_, err := own.Compact(within(t))
		require.NoError(t, err)
		require.NoError(t, own.Member(1).Restart(within(t)))
		eventually(t, "not Stale", func() bool { return !w.Stale() })
	}
	outage(func() {})
	require.NoError(t, w.WaitFor(within(t), pub(2)))
	outage(func() { pub(3); pub(4) })
	require.NoError(t, w.WaitFor(within(t), 4))
	time.Sleep(500 * time.Millisecond) // room for a wrong extra call
	require.Equal(t, [][2]int{{1, 2}, {2, 4}}, r.get())
}

// A watcher with a snapshot file starts from it when etcd cannot be read,
// and catches up when it can.
func TestSnapshotColdStart(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	name := "snap/app"
	file := filepath.Join(t.TempDir(), "app.snapshot")
	v, err := config.Publish(t.Context(), own.Client(), name, []byte(`{"max_conns":1}`))
	require.NoError(t, err)
	w, err := config.Watch(t.Context(), own.NewClient(t), name, decodeLimits, config.WithSnapshotFile(file))
	require.NoError(t, err)
	require.NoError(t, w.WaitFor(within(t), v))
	w.Close()

	cut := own.ProxyClient(t, 0)
	own.Member(0).Blackhole()
	t.Cleanup(own.Member(0).Unblackhole)
	_, err = config.Watch(within(t), cut, name, decodeLimits, config.WithStartTimeout(300*time.Millisecond))
	require.Error(t, err, "no snapshot: Watch cannot start")
	w, err = config.Watch(within(t), cut, name, decodeLimits,
		config.WithSnapshotFile(file), config.WithStartTimeout(300*time.Millisecond), config.WithCheckInterval(100*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()
	require.True(t, w.Stale())
	require.EqualValues(t, 1, w.Version())
	require.Equal(t, 1, w.Load().MaxConns)
	v, err = config.Publish(t.Context(), own.Client(), name, []byte(`{"max_conns":2}`))
	require.NoError(t, err)
	own.Member(0).Unblackhole()
	require.NoError(t, w.WaitFor(within(t), v))
	eventually(t, "not Stale", func() bool { return !w.Stale() })
}

// Closing the watcher's client ends the watcher with ErrClientClosed, and
// a WaitFor blocked on it returns.
func TestClosedClientEndsWatch(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	wcli := srv.NewClient(t)
	w, err := config.Watch(t.Context(), wcli, name, decodeLimits)
	require.NoError(t, err)
	defer w.Close()
	errc := make(chan error, 1)
	go func() { errc <- w.WaitFor(t.Context(), 5) }()
	wcli.Close()
	select {
	case <-w.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("watcher still running 30 s after its client closed")
	}
	require.ErrorIs(t, w.Err(), config.ErrClientClosed)
	require.ErrorIs(t, <-errc, config.ErrClientClosed)
	w.Close()
	require.ErrorIs(t, w.Err(), config.ErrClientClosed)
}

// A watcher whose client is cut off turns Stale, keeps its last value, and
// catches up when the partition heals; Close returns whether or not the
// client is cut off.
func TestCutOffWatcherStaysGoodAndCatchesUp(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	name := "cutoff/app"
	v, err := config.Publish(t.Context(), own.Client(), name, []byte(`{"max_conns":1}`))
	require.NoError(t, err)
	cut := own.ProxyClient(t, 0)
	watch := func() *config.Watcher[limits] {
		t.Helper()
		w, err := config.Watch(within(t), cut, name, decodeLimits, config.WithCheckInterval(100*time.Millisecond))
		require.NoError(t, err)
		require.NoError(t, w.WaitFor(within(t), v))
		return w
	}
	w, closedCutOff := watch(), watch()

	own.Member(0).Blackhole()
	t.Cleanup(own.Member(0).Unblackhole)
	eventually(t, "Stale", w.Stale)
	eventually(t, "second watcher Stale", closedCutOff.Stale)
	awaitUnreachable(t, w.Errors())
	v2, err := config.Publish(t.Context(), own.Client(), name, []byte(`{"max_conns":2}`))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // room for a wrong apply
	require.Equal(t, 1, w.Load().MaxConns, "the last good value is kept while cut off")
	require.EqualValues(t, v, w.Version())
	require.True(t, w.Stale())
	closeWithin(t, closedCutOff)
	require.ErrorIs(t, closedCutOff.Err(), config.ErrClosed)

	own.Member(0).Unblackhole()
	require.NoError(t, w.WaitFor(within(t), v2))
	require.Equal(t, 2, w.Load().MaxConns)
	eventually(t, "not Stale", func() bool { return !w.Stale() })
	closeWithin(t, w)
}

// awaitUnreachable reads errc until a report that etcd could not be read
// (not an invalid value), failing the test after a generous bound.
func awaitUnreachable(t *testing.T, errc <-chan error) {
	t.Helper()
	for deadline := time.After(30 * time.Second); ; {
		select {
		case err := <-errc:
			if !errors.Is(err, config.ErrInvalid) && !errors.Is(err, config.ErrMalformed) {
				return
			}
		case <-deadline:
			t.Fatal("no report that etcd is unreachable after 30 s")
		}
	}
}

// closeWithin closes w, failing the test if Close has not returned after a
// generous bound.
func closeWithin[T any](t *testing.T, w *config.Watcher[T]) {
	t.Helper()
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close has not returned after 30 s")
	}
}
