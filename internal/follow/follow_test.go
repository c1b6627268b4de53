package follow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// step is what one call to Next gave a [watcher]: the keys of its events
// (a "-" before a deleted one), or a relist with the keys then read.
type step struct {
	keys   []string
	relist bool
	err    error
}

// watcher runs f in its own goroutine as a caller would, reading pfx again
// on every relist, and sends each step until Next fails. Cleanup stops it
// and waits for it.
func watcher(t *testing.T, cli *clientv3.Client, f *follow.Follower, pfx string) <-chan step {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan step, 100)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; f.Close() })
	go func() {
		defer close(done)
		for {
			evs, relist, err := f.Next(ctx)
			s := step{relist: relist, err: err}
			if relist {
				resp, gerr := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
				if gerr != nil {
					s.err = gerr
				} else {
					f.Reset(resp.Header.Revision)
					for _, kv := range resp.Kvs {
						s.keys = append(s.keys, string(kv.Key[len(pfx):]))
					}
				}
			}
			for _, ev := range evs {
				k := string(ev.Kv.Key[len(pfx):])
				if ev.Type == clientv3.EventTypeDelete {
					k = "-" + k
				}
				s.keys = append(s.keys, k)
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return
			}
			if s.err != nil {
				return
			}
		}
	}()
	return out
}

// next returns the watcher's next step, failing the test if none comes
// within a generous bound.
func next(t *testing.T, steps <-chan step) step {
	t.Helper()
	select {
	case s := <-steps:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no step from the follower within 30 s")
		return step{}
	}
}

func put(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Put(t.Context(), key, "v")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func wantStep(t *testing.T, got step, want step) {
	t.Helper()
	if got.err != nil || got.relist != want.relist || !slices.Equal(got.keys, want.keys) {
		t.Fatalf("Next() = %+v, want %+v", got, want)
	}
}

// TestStartsWithoutGap: a change made between the caller's read and the
// follower's watch is not lost: the follower asks for one relist, and
// follows on from it.
func TestStartsWithoutGap(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	rev := put(t, cli, pfx+"a")
	put(t, cli, pfx+"b") // after the read, before the watch
	steps := watcher(t, cli, follow.New(cli, pfx, rev, follow.WithPrefix()), pfx)
	wantStep(t, next(t, steps), step{relist: true, keys: []string{"a", "b"}})
	put(t, cli, pfx+"c")
	wantStep(t, next(t, steps), step{keys: []string{"c"}})
	if _, err := cli.Delete(t.Context(), pfx, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	got := next(t, steps)
	for len(got.keys) < 3 && got.err == nil && !got.relist {
		more := next(t, steps)
		got.keys, got.err, got.relist = append(got.keys, more.keys...), more.err, more.relist
	}
	wantStep(t, got, step{keys: []string{"-a", "-b", "-c"}})
}

// TestStartsInSync: when nothing changed since the caller's read, the
// follower starts at the store's revision without asking for a relist, and
// delivers the next change.
func TestStartsInSync(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	cli := own.NewClient(t)
	rev := put(t, cli, "k/a")
	f := follow.New(cli, "k/", rev, follow.WithPrefix())
	steps := watcher(t, cli, f, "k/")
	eventually(t, func() bool { return follow.Created(f) > 0 }, "the watch was never confirmed")
	put(t, cli, "k/b")
	wantStep(t, next(t, steps), step{keys: []string{"b"}})
}

// eventually fails the test if cond does not hold within a generous bound.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRestartsAfterLeaderLoss: a member that loses its leader cancels the
// watch (it requires a leader); the follower opens it again from where it
// stopped once the cluster has a leader, and neither misses nor repeats a
// change.
func TestRestartsAfterLeaderLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewCluster(t, 3)
	lead, err := c.WaitLeader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Member(lead).Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	rev := put(t, cli, "k/a")
	seen := &restarts{}
	f := follow.New(cli, "k/", rev, follow.WithPrefix(), follow.Observed(seen.observer(), observe.KindBarrier))
	steps := watcher(t, cli, f, "k/")
	eventually(t, func() bool { return follow.Created(f) > 0 }, "the watch was never confirmed")
	put(t, cli, "k/b")
	wantStep(t, next(t, steps), step{keys: []string{"b"}})

	for i := range c.Size() {
		if i != lead {
			c.Member(i).Stop()
		}
	}
	eventually(t, func() bool { return follow.Opens(f) > 1 }, "the follower never re-opened its watch after the member lost its leader")
	for i := range c.Size() {
		if i != lead {
			if err := c.Member(i).Restart(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.WaitLeader(t.Context()); err != nil {
		t.Fatal(err)
	}
	put(t, cli, "k/c")
	wantStep(t, next(t, steps), step{keys: []string{"c"}})
	if got := seen.count(observe.KindBarrier, "k/", observe.ReasonBroken); got < 1 {
		t.Errorf("broken watch restarts reported: %d, want at least 1", got)
	}
}

// TestCompactionRelistsOnce: a watch that resumes from a compacted revision
// makes the follower ask for one relist and follow on from it; an idle
// follower whose revision a progress notification moved past the compaction
// resumes without one.
func TestCompactionRelistsOnce(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	// Two clients, so that the progress request reaches only one follower.
	idle, current := own.NewClient(t), own.NewClient(t)
	put(t, idle, "k/a")
	// Started at revision 0, each follower asks for a relist once its watch
	// is established.
	seen := &restarts{}
	stale := follow.New(idle, "k/", 0, follow.WithPrefix(), follow.Observed(seen.observer(), ""))
	staleSteps := watcher(t, idle, stale, "k/")
	wantStep(t, next(t, staleSteps), step{relist: true, keys: []string{"a"}})
	fresh := follow.New(current, "k/", 0, follow.WithPrefix())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, relist, err := fresh.Next(ctx); err != nil || !relist {
		t.Fatalf("first Next() = %v, %v, want a relist", relist, err)
	}
	fresh.Reset(put(t, idle, "other"))

	// The store moves on elsewhere; a progress notification tells fresh so.
	var now int64
	for range 5 {
		now = put(t, idle, "other")
	}
	for fresh.Rev() < now {
		if err := current.RequestProgress(clientv3.WithRequireLeader(t.Context())); err != nil {
			t.Fatal(err)
		}
		short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		evs, relist, err := fresh.Next(short)
		stop()
		if len(evs) > 0 || relist || (err != nil && ctx.Err() != nil) {
			t.Fatalf("idle Next() = %v, %v, %v before its revision reached %d", evs, relist, err, now)
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	}
	freshSteps := watcher(t, current, fresh, "k/")

	if _, err := own.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	own.Member(0).Stop()
	if err := own.Member(0).Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantStep(t, next(t, staleSteps), step{relist: true, keys: []string{"a"}})
	put(t, idle, "k/b")
	wantStep(t, next(t, staleSteps), step{keys: []string{"b"}})
	wantStep(t, next(t, freshSteps), step{keys: []string{"b"}})
	if got := seen.count("", "k/", observe.ReasonCompacted); got != 1 {
		t.Errorf("compacted watch restarts reported: %d, want 1", got)
	}
}

// TestRefused: a watch on keys the user's role does not cover ends Next
// with etcd's refusal, once, instead of re-opening it.
func TestRefused(t *testing.T) {
	t.Parallel()
	_, cli := testutil.AuthServer(t)
	seen := &restarts{}
	f := follow.New(cli, "other/", 1, follow.WithPrefix(), follow.Observed(seen.observer(), ""))
	got := next(t, watcher(t, cli, f, "other/"))
	if !errors.Is(got.err, rpctypes.ErrPermissionDenied) || !errs.Refused(got.err) {
		t.Fatalf("Next() = %+v, want an error wrapping %v", got, rpctypes.ErrPermissionDenied)
	}
	if n := follow.Opens(f); n != 1 {
		t.Fatalf("the follower opened %d watches, want 1: a refusal is not retried", n)
	}
	if got := seen.count("", "other/", observe.ReasonRefused); got != 1 {
		t.Errorf("refused watches reported: %d, want 1", got)
	}
}

// TestClosedClient: closing the client ends a Next that is waiting, and a
// Next called after, with errs.Closed.
func TestClosedClient(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"while waiting", "before"} {
		t.Run(name, func(t *testing.T) {
			cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			pfx := fmt.Sprintf("/test/%s/", t.Name())
			f := follow.New(cli, pfx, 0, follow.WithPrefix())
			if name == "before" {
				cli.Close()
			}
			steps := watcher(t, cli, f, pfx)
			if name != "before" {
				wantStep(t, next(t, steps), step{relist: true}) // the watch is established
				cli.Close()
			}
			if got := next(t, steps); !errors.Is(got.err, errs.Closed) {
				t.Fatalf("Next() = %+v, want %v", got, errs.Closed)
			}
		})
	}
}

// TestRefusedOnReopen: a follower whose user loses the right to read its
// keys while it waits ends with etcd's refusal when its watch has to be
// opened again (here because the member restarted), instead of re-opening
// it for as long as it is asked to wait.
func TestRefusedOnReopen(t *testing.T) {
	t.Parallel()
	own, cli := testutil.AuthServer(t)
	steps := watcher(t, cli, follow.New(cli, "app/", 0, follow.WithPrefix()), "app/")
	wantStep(t, next(t, steps), step{relist: true})
	testutil.RevokeAndRestart(t, own)
	if got := next(t, steps); !errors.Is(got.err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("Next() = %+v, want an error wrapping %v", got, rpctypes.ErrPermissionDenied)
	}
}

// TestFilterPut: with WithFilterPut the follower delivers deletions only;
// the writes in between are never sent.
func TestFilterPut(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	cli := own.NewClient(t)
	rev := put(t, cli, "k/a")
	f := follow.New(cli, "k/", rev, follow.WithPrefix(), follow.WithFilterPut())
	steps := watcher(t, cli, f, "k/")
	eventually(t, func() bool { return follow.Created(f) > 0 }, "the watch was never confirmed")
	put(t, cli, "k/b")
	if _, err := cli.Delete(t.Context(), "k/a"); err != nil {
		t.Fatal(err)
	}
	wantStep(t, next(t, steps), step{keys: []string{"-a"}})
}

// TestPartitionedOpenEndsWithContext: the client's Watch returns only once
// etcd confirms the watch. Cut off from etcd, Next must still end when its
// context does, not wait for a confirmation that cannot come.
func TestPartitionedOpenEndsWithContext(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t)
	cli := own.ProxyClient(t, 0)
	f := follow.New(cli, "k/", 0, follow.WithPrefix())
	defer f.Close()
	own.Member(0).Blackhole()
	defer own.Member(0).Unblackhole()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_, _, err := f.Next(ctx)
		got <- err
	}()
	select {
	case err := <-got:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next() = %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(30 * time.Second):
		own.Member(0).Unblackhole() // lets Next return, so the test ends
		<-got
		t.Fatal("Next did not end with its context while etcd was out of reach")
	}
}

// TestCutOffEndsWithContext checks that a follower whose client is cut off
// from etcd (a connection that stays open but carries nothing) still ends
// Next when ctx ends and closes without waiting for etcd: opening a watch
// blocks until the client's watch stream is up, which a cut-off client
// never gets.
func TestCutOffEndsWithContext(t *testing.T) {
	t.Parallel()
	c := etcdtest.NewServer(t)
	cli := c.ProxyClient(t, 0)
	c.Member(0).Blackhole()
	defer c.Member(0).Unblackhole()
	f := follow.New(cli, "cut/", 0, follow.WithPrefix())
	for range 2 { // the first watch, and one already being opened
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, _, err := f.Next(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next on a cut-off client = %v, want the context's deadline", err)
		}
	}
	closed := make(chan struct{})
	go func() { f.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close on a cut-off client did not return within 30 s")
	}
}
