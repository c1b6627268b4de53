package observe_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/observe"
)

// records is a slog.Handler that keeps every record as its message and
// attributes, for tests to wait on.
type records struct {
	mu   sync.Mutex
	recs []map[string]string // "msg" and each attribute, as text
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"msg": rec.Message, "level": rec.Level.String()}
	rec.Attrs(func(a slog.Attr) bool {
		if !a.Equal(slog.Attr{}) { // handlers skip empty attributes
			m[a.Key] = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, m)
	r.mu.Unlock()
	return nil
}

// wait returns the first record whose fields include want, failing the
// test if none is logged within a generous bound.
func (r *records) wait(t *testing.T, want map[string]string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		i := slices.IndexFunc(r.recs, func(m map[string]string) bool {
			for k, v := range want {
				if m[k] != v {
					return false
				}
			}
			return true
		})
		var got map[string]string
		if i >= 0 {
			got = r.recs[i]
		}
		all := fmt.Sprint(r.recs)
		r.mu.Unlock()
		if got != nil {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record with %v within 30 s; logged: %s", want, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlogMutex: the slog observer logs a mutex's acquisition with its
// token, its release, and its loss when someone else deletes its key.
func TestSlogMutex(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	recs := &records{}
	m := mutex.New(s, pfx+"lock", mutex.WithObserver(observe.Slog(slog.New(recs))))
	ctx := t.Context()

	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprint(m.Token())
	name := pfx + "lock/"
	recs.wait(t, map[string]string{"msg": "coordkit: acquire", "kind": "mutex", "name": name, "result": "acquired", "token": token})
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	recs.wait(t, map[string]string{"msg": "coordkit: release", "kind": "mutex", "token": token})

	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	token = fmt.Sprint(m.Token())
	done := m.Done() // follow the key, so that its deletion ends the hold
	if _, err := cli.Delete(ctx, m.Key()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitClosed(t, done, 30*time.Second, "Done after the key was deleted")
	recs.wait(t, map[string]string{"msg": "coordkit: hold lost", "kind": "mutex", "token": token, "reason": "deleted", "level": "WARN"})
	m.Unlock(ctx) // ends the lost hold; its error is expected
}

// TestSlogElection: the slog observer logs a leadership as it begins and
// ends, and its loss when someone else deletes the leader's key.
func TestSlogElection(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	recs := &records{}
	e := election.New(s, pfx+"elect", election.WithObserver(observe.Slog(slog.New(recs))))
	ctx := t.Context()
	name := pfx + "elect/"

	if err := e.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprint(e.Token())
	recs.wait(t, map[string]string{"msg": "coordkit: acquire", "kind": "election", "name": name, "result": "acquired", "token": token})
	recs.wait(t, map[string]string{"msg": "coordkit: leadership", "name": name, "leader": "true", "token": token})
	if err := e.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	recs.wait(t, map[string]string{"msg": "coordkit: release", "kind": "election", "token": token})
	recs.wait(t, map[string]string{"msg": "coordkit: leadership", "leader": "false", "token": token})

	if err := e.Campaign(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	token = fmt.Sprint(e.Token())
	done := e.Done()
	if _, err := cli.Delete(ctx, e.Key()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitClosed(t, done, 30*time.Second, "Done after the key was deleted")
	recs.wait(t, map[string]string{"msg": "coordkit: hold lost", "kind": "election", "token": token, "reason": "deleted"})
	recs.wait(t, map[string]string{"msg": "coordkit: leadership", "leader": "false", "token": token})
	e.Resign(ctx) // ends the lost leadership; its error is expected
}

// TestSlogTryLockBusy: a TryLock that finds the lock taken is logged as
// busy, not as an error.
func TestSlogTryLockBusy(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	holder := mutex.New(testutil.Session(t, cli, 10), pfx+"lock")
	if err := holder.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs := &records{}
	m := mutex.New(testutil.Session(t, cli, 10), pfx+"lock", mutex.WithObserver(observe.Slog(slog.New(recs))))
	if err := m.TryLock(t.Context()); err == nil {
		t.Fatal("TryLock() = nil on a held lock")
	}
	recs.wait(t, map[string]string{"msg": "coordkit: acquire", "result": "busy", "level": "DEBUG"})
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}
