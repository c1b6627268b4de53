package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/registry"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
)

// ids returns the IDs of the snapshot's instances.
func ids(s registry.Snapshot) []string {
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.ID)
	}
	return out
}

// TestViewStaleDuringOutage: a View cut off from etcd keeps its last set
// and reports it stale, then catches up once etcd is back.
func TestViewStaleDuringOutage(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	register(t, es.Client(), "/svc", "a")
	v := registry.Watch(es.ProxyClient(t, 0), "/svc", registry.WithProbeInterval(200*time.Millisecond))
	defer v.Close()
	testutil.WaitClosed(t, v.Ready(), 30*time.Second, "Ready")
	es.Member(0).Blackhole()
	t.Cleanup(es.Member(0).Unblackhole)
	eventually(t, "stale", v.Stale)
	register(t, es.Client(), "/svc", "b")
	if got := ids(v.Snapshot()); len(got) != 1 || got[0] != "a" {
		t.Fatalf("Snapshot() during the outage = %v, want [a]", got)
	}
	es.Member(0).Unblackhole()
	eventually(t, "caught up", func() bool { s := v.Snapshot(); return !s.Stale && len(s.Instances) == 2 })
}

// TestViewCloseDuringOutage: a View closed while it waits to reach etcd
// again reports nil from Err, as after any Close, not ErrClosed.
func TestViewCloseDuringOutage(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	v := registry.Watch(es.ProxyClient(t, 0), "/svc", registry.WithProbeInterval(10*time.Millisecond))
	defer v.Close()
	testutil.WaitClosed(t, v.Ready(), 30*time.Second, "Ready")
	es.Member(0).Blackhole()
	t.Cleanup(es.Member(0).Unblackhole)
	eventually(t, "stale", v.Stale)
	// Room for the pauses between attempts to grow, so that the View
	// spends nearly all its time in one when Close lands.
	time.Sleep(3 * time.Second)
	v.Close()
	if err := v.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}
}

// TestViewCompactionNoDuplicate: a compaction that forces a relist sends
// no notification when nothing changed.
func TestViewCompactionNoDuplicate(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewCluster(t, 3)
	cli := es.Client()
	register(t, cli, "/svc", "a")
	// The View reaches member 0 only; a long probe interval means no stale
	// flip may explain a notification.
	v := registry.Watch(es.ProxyClient(t, 0), "/svc", registry.WithProbeInterval(time.Minute))
	defer v.Close()
	testutil.WaitClosed(t, v.Ready(), 30*time.Second, "Ready")
	<-v.Changes() // the first set
	// The store moves and is compacted while the View's watch is down, so
	// that it cannot resume and must read again.
	es.Member(0).Stop()
	for range 3 {
		if _, err := cli.Put(t.Context(), "/other", "x"); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := es.Compact(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Member(0).Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "relisted past the compaction", func() bool { return v.Snapshot().Rev >= rev })
	select {
	case <-v.Changes():
		t.Fatalf("a notification with nothing changed: %+v", v.Snapshot())
	case <-time.After(time.Second):
	}
	if got := ids(v.Snapshot()); len(got) != 1 || got[0] != "a" {
		t.Fatalf("Snapshot() = %v, want [a]", got)
	}
}

// TestInteropWithEtcdEndpoints: etcd's endpoints.Manager sees coordkit's
// instances, and a View sees the Manager's.
func TestInteropWithEtcdEndpoints(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	m, err := endpoints.NewManager(cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	register(t, cli, svc, "ours")
	eps, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := eps[svc+"/ours"]; !ok || ep.Addr != "ours:80" {
		t.Fatalf("Manager.List() = %v, want ours:80", eps)
	}
	ctx, cancel := context.WithCancel(t.Context())
	wch, err := m.NewWatchChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ups := <-wch; len(ups) != 1 || ups[0].Endpoint.Addr != "ours:80" {
		t.Fatalf("NewWatchChannel() first = %+v", ups)
	}
	cancel()
	for range wch {
	}

	v := registry.Watch(cli, svc)
	defer v.Close()
	if err := m.AddEndpoint(t.Context(), svc+"/theirs", endpoints.Endpoint{Addr: "theirs:81", Metadata: map[string]string{"z": "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.DeleteEndpoint(context.Background(), svc+"/theirs") })
	eventually(t, "view sees theirs", func() bool {
		s := v.Snapshot()
		return len(s.Instances) == 2 && s.Instances[1].ID == "theirs" &&
			s.Instances[1].Addr == "theirs:81" && s.Instances[1].Metadata["z"] == "1"
	})
	if _, err := cli.Put(t.Context(), svc+"/junk", "not json"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Delete(context.Background(), svc+"/junk") })
	eventually(t, "junk skipped", func() bool { s := v.Snapshot(); return len(s.Skipped) == 1 && len(s.Instances) == 2 })
}
