package promobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/observe"
	"github.com/coordkit/coordkit/observe/promobs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// value returns the value of the sample of metric name whose labels are
// exactly labels: a counter's or a gauge's value, a histogram's sample
// count; -1 if there is no such sample.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !match(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func match(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// eventually waits until metric name with labels has value want, failing
// the test if it has not within a generous bound.
func eventually(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := value(t, reg, name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newObserver(t *testing.T) (*prometheus.Registry, *observe.Observer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o, err := promobs.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, o
}

// TestContendedLockAndLoss: a contended lock counts two acquisitions and
// two waits; a hold whose key someone else deleted counts a loss.
func TestContendedLockAndLoss(t *testing.T) {
	t.Parallel()
	reg, o := newObserver(t)
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	a := mutex.New(testutil.Session(t, cli, 10), pfx+"lock", mutex.WithObserver(o))
	b := mutex.New(testutil.Session(t, cli, 10), pfx+"lock", mutex.WithObserver(o))
	ctx := t.Context()
	if err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- b.Lock(ctx) }()
	for len(testutil.Keys(t, cli, pfx)) < 2 { // b is in line
		time.Sleep(10 * time.Millisecond)
	}
	c := mutex.New(testutil.Session(t, cli, 10), pfx+"lock", mutex.WithObserver(o))
	if err := c.TryLock(ctx); !errors.Is(err, mutex.ErrLocked) {
		t.Fatalf("TryLock() = %v, want ErrLocked", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Lock did not return within 30 s of Unlock")
	}
	mutexLabel := map[string]string{"kind": "mutex"}
	eventually(t, reg, "coordkit_acquisitions_total", map[string]string{"kind": "mutex", "result": "acquired"}, 2)
	eventually(t, reg, "coordkit_acquisitions_total", map[string]string{"kind": "mutex", "result": "busy"}, 1)
	eventually(t, reg, "coordkit_lock_wait_seconds", mutexLabel, 2)

	done := b.Done()
	if _, err := cli.Delete(ctx, b.Key()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitClosed(t, done, 30*time.Second, "Done after the key was deleted")
	eventually(t, reg, "coordkit_hold_lost_total", map[string]string{"kind": "mutex", "reason": "deleted"}, 1)
	b.Unlock(ctx) // ends the lost hold; its error is expected
}

// TestLeaderGauge: the election gauge is 1 while leading, 0 after
// Resign, and carries the election's name.
func TestLeaderGauge(t *testing.T) {
	t.Parallel()
	reg, o := newObserver(t)
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	e := election.New(testutil.Session(t, cli, 10), pfx+"elect", election.WithObserver(o))
	name := map[string]string{"name": pfx + "elect/"}
	if err := e.Campaign(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, reg, "coordkit_election_is_leader", name, 1)
	if err := e.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, reg, "coordkit_election_is_leader", name, 0)
	eventually(t, reg, "coordkit_acquisitions_total", map[string]string{"kind": "election", "result": "acquired"}, 1)
}

// TestWatchRestartCompacted: a compaction while the member was down makes a
// follower's resumed watch report compacted, and it is counted by reason.
// (A broken watch needs a member that loses its leader: internal/follow's
// TestRestartsAfterLeaderLoss checks that it is reported.)
func TestWatchRestartCompacted(t *testing.T) {
	t.Parallel()
	reg, o := newObserver(t)
	own := etcdtest.NewServer(t)
	cli := own.NewClient(t)
	ctx := t.Context()

	// A follower that has read its prefix and sits idle on an old revision.
	resp, err := cli.Put(ctx, "k/a", "v")
	if err != nil {
		t.Fatal(err)
	}
	f := follow.New(cli, "k/", resp.Header.Revision, follow.WithPrefix(), follow.Observed(o, ""))
	fctx, cancel := context.WithCancel(context.Background())
	type step struct {
		relist bool
		err    error
	}
	steps := make(chan step, 10)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; f.Close() })
	go func() {
		defer close(done)
		for {
			_, relist, err := f.Next(fctx)
			if relist {
				if r, gerr := cli.Get(fctx, "k/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); gerr == nil {
					f.Reset(r.Header.Revision)
				}
			}
			select {
			case steps <- step{relist, err}:
			case <-fctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for range 5 {
		if _, err := cli.Put(ctx, "other", "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := own.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	own.Member(0).Stop()
	if err := own.Member(0).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-steps:
		if s.err != nil || !s.relist {
			t.Fatalf("Next() after compaction = %+v, want a relist", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no relist within 30 s of the compaction")
	}
	eventually(t, reg, "coordkit_watch_restarts_total", map[string]string{"kind": "", "reason": "compacted"}, 1)
}
