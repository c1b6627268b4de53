package registry_test

import (
	"sync"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/observe"
	"github.com/coordkit/coordkit/registry"
)

// TestObserverSeesLostLease: a registration whose lease is revoked reports
// the loss to its observer, once, and registers again; Deregister reports
// none.
func TestObserverSeesLostLease(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	var mu sync.Mutex
	var losses []observe.Loss
	o := &observe.Observer{Lost: func(l observe.Loss) {
		mu.Lock()
		defer mu.Unlock()
		losses = append(losses, l)
	}}
	r := register(t, cli, svc, "a", registry.WithObserver(o))
	old := r.Status().Lease
	if _, err := cli.Revoke(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key back on a new lease", func() bool {
		l := lease(t, cli, r.Key())
		return l != -1 && l != old
	})
	if err := r.Deregister(t.Context()); err != nil {
		t.Fatalf("Deregister() = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(losses) != 1 {
		t.Fatalf("Lost called %d times, want 1: %+v", len(losses), losses)
	}
	l := losses[0]
	if l.Kind != observe.KindRegistry || l.Name != r.Key() || l.Reason != observe.ReasonSessionExpired {
		t.Fatalf("Lost(%+v), want kind %q, name %q, reason %q", l, observe.KindRegistry, r.Key(), observe.ReasonSessionExpired)
	}
}
