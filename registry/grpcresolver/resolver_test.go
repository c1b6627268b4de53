package grpcresolver_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/registry"
	"github.com/coordkit/coordkit/registry/grpcresolver"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// TestRoundRobinFollowsInstances: round_robin over the resolver spreads
// calls over every registered instance, stops sending to one that is
// deregistered or draining, and starts sending to one that is added.
func TestRoundRobinFollowsInstances(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "hello"
	a, b, c, d := newServer(t), newServer(t), newServer(t), newServer(t)
	all := []*server{a, b, c, d}
	register(t, cli, svc, "a", a, nil)
	rb := register(t, cli, svc, "b", b, nil)
	rc := register(t, cli, svc, "c", c, nil)
	cc := dial(t, grpcresolver.Target(svc), grpcresolver.New(cli))

	spread(t, cc, all, a, b, c)
	if err := rb.Deregister(t.Context()); err != nil {
		t.Fatalf("Deregister() = %v", err)
	}
	spread(t, cc, all, a, c)
	if err := rc.SetState(t.Context(), registry.Draining); err != nil {
		t.Fatalf("SetState(Draining) = %v", err)
	}
	spread(t, cc, all, a)
	register(t, cli, svc, "d", d, nil)
	spread(t, cc, all, a, d)
}

// TestStateCarriesInfoWithoutDuplicates: the resolver publishes the first
// set even when it is empty, every change after it with each instance's
// metadata as a comparable Info, drops draining instances, and publishes
// nothing for a change its ClientConn would not see.
func TestStateCarriesInfoWithoutDuplicates(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "hello"
	rec := newRecorder()
	r, err := grpcresolver.New(cli).Build(target(t, svc), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	defer r.Close()
	last := func() []string {
		states, _ := rec.snapshot()
		if len(states) == 0 {
			return nil
		}
		out := []string{}
		for _, a := range states[len(states)-1].Addresses {
			info, ok := grpcresolver.InfoOf(a)
			if !ok {
				t.Fatalf("InfoOf(%v) found nothing", a)
			}
			out = append(out, info.ID+"="+info.Metadata()["zone"])
		}
		return out
	}
	eventually(t, "the first, empty set", func() bool { return last() != nil })

	a, b := newServer(t), newServer(t)
	ra := register(t, cli, svc, "a", a, map[string]string{"zone": "1"})
	rb := register(t, cli, svc, "b", b, map[string]string{"zone": "2"})
	eventually(t, "both", func() bool { return slices.Equal(last(), []string{"a=1", "b=2"}) })
	if err := rb.SetState(t.Context(), registry.Draining); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b dropped", func() bool { return slices.Equal(last(), []string{"a=1"}) })
	// Changes to a draining instance are no change to the ClientConn.
	for _, z := range []string{"3", "4", "5"} {
		if err := rb.Update(t.Context(), map[string]string{"zone": z}, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // let the resolver see each on its own
	}
	if err := ra.Update(t.Context(), map[string]string{"zone": "9"}, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's new metadata", func() bool { return slices.Equal(last(), []string{"a=9"}) })
	states, errs := rec.snapshot()
	for i := 1; i < len(states); i++ {
		if states[i].Addresses == nil || addrsEqual(states[i-1], states[i]) {
			t.Errorf("UpdateState %d repeats %d: %v", i, i-1, states[i].Addresses)
		}
	}
	if len(errs) > 0 {
		t.Errorf("ReportError() called with %v", errs)
	}
}

// addrsEqual reports whether two states give the same addresses and
// attributes.
func addrsEqual(a, b resolver.State) bool {
	return slices.EqualFunc(a.Addresses, b.Addresses, func(x, y resolver.Address) bool {
		return x.Addr == y.Addr && x.BalancerAttributes.Equal(y.BalancerAttributes)
	})
}

// target returns the parsed dial target of svc.
func target(t *testing.T, svc string) resolver.Target {
	t.Helper()
	u, err := url.Parse(grpcresolver.Target(svc))
	if err != nil {
		t.Fatal(err)
	}
	return resolver.Target{URL: *u}
}

// TestUnreachableAtStart: with no data at all the resolver reports an
// error, so calls fail instead of hanging; once etcd answers, calls go
// through.
func TestUnreachableAtStart(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	svc := "/svc"
	a := newServer(t)
	register(t, es.Client(), svc, "a", a, nil)
	es.Member(0).Blackhole()
	t.Cleanup(es.Member(0).Unblackhole)
	cli := es.ProxyClient(t, 0)
	b := grpcresolver.New(cli, registry.WithProbeInterval(200*time.Millisecond))

	rec := newRecorder()
	r, err := b.Build(target(t, svc), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	defer r.Close()
	eventually(t, "an error reported", func() bool { _, errs := rec.snapshot(); return len(errs) > 0 })
	if states, errs := rec.snapshot(); len(states) != 0 || !errors.Is(errs[0], grpcresolver.ErrNoData) {
		t.Fatalf("before any read: states %v, errors %v; want no state and ErrNoData", states, errs)
	}

	cc := dial(t, grpcresolver.Target(svc), b)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Check() with etcd unreachable = %v, want Unavailable", err)
	}

	es.Member(0).Unblackhole()
	eventually(t, "the set published", func() bool { states, _ := rec.snapshot(); return len(states) == 1 })
	call(t, cc)
	if a.calls.Load() == 0 {
		t.Fatal("the call did not reach the instance")
	}
}

// TestEtcdResolverSeesOurInstances: etcd's own etcd:/// resolver balances
// over instances registered with registry.Register.
func TestEtcdResolverSeesOurInstances(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "hello"
	a, b := newServer(t), newServer(t)
	register(t, cli, svc, "a", a, map[string]string{"zone": "1"})
	register(t, cli, svc, "b", b, nil)
	eb, err := etcdresolver.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	cc := dial(t, "etcd:///"+svc, eb)
	spread(t, cc, []*server{a, b}, a, b)
}

// TestBuildNoService: a target that names no service is refused.
func TestBuildNoService(t *testing.T) {
	t.Parallel()
	_, err := grpcresolver.New(testutil.Client(t, srv)).Build(target(t, ""), newRecorder(), resolver.BuildOptions{})
	if !errors.Is(err, grpcresolver.ErrNoService) {
		t.Fatalf("Build(%q) = %v, want ErrNoService", grpcresolver.Target(""), err)
	}
}
