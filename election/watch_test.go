package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// watchAll watches the election on name through cli until the Watcher's
// channel closes, and returns the Watcher's Err then.
func watchAll(ctx context.Context, cli *clientv3.Client, name string) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		return err
	}
	defer s.Close()
	w := election.New(s, name).Watch(ctx)
	for range w.Leaders() {
	}
	select {
	case <-w.Done():
	default:
		return errors.New("Leaders closed before Done")
	}
	return w.Err()
}

// TestWatchErrWhenClientCloses: a closed client ends a Watcher, and its
// Err says so, although the Watcher's context is still alive.
func TestWatchErrWhenClientCloses(t *testing.T) {
	t.Parallel()
	if err := testutil.EndsOnClose(t, srv, watchAll); !errors.Is(err, election.ErrClosed) {
		t.Fatalf("Watcher.Err() = %v, want %v", err, election.ErrClosed)
	}
}

// TestWatchErrWhenRefused: a Watcher whose watch etcd refuses stops, and
// its Err is etcd's refusal.
func TestWatchErrWhenRefused(t *testing.T) {
	t.Parallel()
	if err := testutil.EndsWhenRefused(t, watchAll); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("Watcher.Err() = %v, want an error wrapping %v", err, rpctypes.ErrPermissionDenied)
	}
}

// TestWatchErrWhenCancelled: a Watcher whose context ends stops with the
// context's error, and Err is nil while it runs.
func TestWatchErrWhenCancelled(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	ctx, cancel := context.WithCancel(t.Context())
	w := election.New(testutil.Session(t, cli, 10), pfx+"e").Watch(ctx)
	<-w.Leaders() // the first state: nobody leads
	if err := w.Err(); err != nil {
		t.Fatalf("Watcher.Err() while running = %v, want nil", err)
	}
	cancel()
	for range w.Leaders() {
	}
	if err := w.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watcher.Err() = %v, want %v", err, context.Canceled)
	}
}

// TestWatchErrWhenClientClosesUnread: a Watcher whose reader is not
// receiving when the client closes stops too, and its Err says why.
func TestWatchErrWhenClientClosesUnread(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, srv.Client())
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	// Nobody receives the first state: the Watcher waits to deliver it.
	w := election.New(s, pfx+"e").Watch(t.Context())
	s.Close()
	cli.Close()
	testutil.WaitClosed(t, w.Done(), time.Minute, "the Watcher after its client closed")
	if err := w.Err(); !errors.Is(err, election.ErrClosed) {
		t.Fatalf("Watcher.Err() = %v, want %v", err, election.ErrClosed)
	}
}

// TestRunReturnsWhenClientClosed: Run on a closed client returns
// ErrClosed instead of trying to create sessions until its context ends.
func TestRunReturnsWhenClientClosed(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	cli.Close()
	// Long enough for many terms at the default backoff; a Run that
	// retries ends with the deadline instead.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := election.Run(ctx, cli, "/test/"+t.Name(), func(context.Context, *election.Election) error {
		t.Error("work ran on a closed client")
		return nil
	})
	if !errors.Is(err, election.ErrClosed) {
		t.Fatalf("Run() = %v, want an error wrapping %v", err, election.ErrClosed)
	}
}
