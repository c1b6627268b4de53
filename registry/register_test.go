package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// register registers an instance of the test's own service, deregistered
// when the test ends.
func register(t *testing.T, cli *clientv3.Client, svc, id string, opts ...registry.Option) *registry.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := registry.Register(ctx, cli, registry.Instance{Service: svc, ID: id, Addr: id + ":80"}, opts...)
	if err != nil {
		t.Fatalf("Register() = %v", err)
	}
	t.Cleanup(func() {
		if err := r.Deregister(context.Background()); err != nil && !errors.Is(err, registry.ErrDeregistered) && !errors.Is(err, registry.ErrClosed) {
			t.Errorf("Deregister() = %v", err)
		}
	})
	return r
}

// eventually fails the test unless cond holds within a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lease returns the lease key is stored on, or -1 if it is absent.
func lease(t *testing.T, cli *clientv3.Client, key string) clientv3.LeaseID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return -1
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

func TestRegisterStoresOnLiveLease(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	r := register(t, cli, svc, "a")
	if got, want := r.Key(), svc+"/a"; got != want {
		t.Fatalf("Key() = %q, want %q", got, want)
	}
	st := r.Status()
	if !st.Registered || st.Lease == 0 || lease(t, cli, r.Key()) != st.Lease {
		t.Fatalf("Status() = %+v, key on lease %x", st, lease(t, cli, r.Key()))
	}
}

func TestLeaseRevokedReRegisters(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	r := register(t, cli, svc, "a")
	old := r.Status().Lease
	if _, err := cli.Revoke(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key back on a new lease", func() bool {
		l := lease(t, cli, r.Key())
		return l != -1 && l != old
	})
	eventually(t, "status registered", func() bool { return r.Status().Registered })
}

func TestDeletedKeyPutBack(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	r := register(t, cli, svc, "a")
	for range 3 {
		if _, err := cli.Delete(t.Context(), r.Key()); err != nil {
			t.Fatal(err)
		}
		eventually(t, "key put back", func() bool { return lease(t, cli, r.Key()) == r.Status().Lease })
	}
}

func TestUpdateAndSetState(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	r := register(t, cli, svc, "a")
	v := registry.Watch(cli, svc)
	defer v.Close()
	if err := r.Update(t.Context(), map[string]string{"zone": "b"}, 3); err != nil {
		t.Fatalf("Update() = %v", err)
	}
	if err := r.SetState(t.Context(), registry.Draining); err != nil {
		t.Fatalf("SetState() = %v", err)
	}
	eventually(t, "view sees the update", func() bool {
		s := v.Snapshot()
		return len(s.Instances) == 1 && s.Instances[0].Weight == 3 &&
			s.Instances[0].Metadata["zone"] == "b" && s.Instances[0].State == registry.Draining
	})
}

// TestOutageLongerThanTTL: a registrant cut off from etcd for longer than
// its TTL loses its key on the server, and stores it again, on a new lease,
// once it can reach etcd.
func TestOutageLongerThanTTL(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	cut := es.ProxyClient(t, 0)
	r := register(t, cut, "/svc", "a", registry.WithTTL(2))
	old := r.Status().Lease
	es.Member(0).Blackhole()
	cutAt := time.Now()
	t.Cleanup(es.Member(0).Unblackhole) // before Deregister, which needs etcd
	eventually(t, "key expired on the server", func() bool { return lease(t, es.Client(), r.Key()) == -1 })
	eventually(t, "status not registered", func() bool { return !r.Status().Registered })
	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wch := es.Client().Watch(wctx, r.Key(), clientv3.WithCreatedNotify())
	<-wch // created: a put from now on is seen
	es.Member(0).Unblackhole()
	healed := time.Now()
	eventually(t, "key back on a new lease", func() bool {
		l := lease(t, es.Client(), r.Key())
		return l != -1 && l != old
	})
	var back time.Time
	for back.IsZero() {
		resp, ok := <-wch // bounded: the key is back, so a put is in the history
		if !ok {
			t.Fatal("watch ended")
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut && back.IsZero() {
				back = time.Now()
			}
		}
	}
	t.Logf("outage of %v (TTL 2 s): the key was back %v after etcd could be reached again",
		healed.Sub(cutAt).Round(time.Millisecond), back.Sub(healed).Round(time.Millisecond))
}

// TestDeregisterRacesReRegistration deregisters while the registration
// puts its key back after a deletion: the key must stay gone.
func TestDeregisterRacesReRegistration(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	for range 20 {
		r := register(t, cli, svc, "a")
		if _, err := cli.Revoke(t.Context(), r.Status().Lease); err != nil {
			t.Fatal(err)
		}
		if err := r.Deregister(t.Context()); err != nil {
			t.Fatalf("Deregister() = %v", err)
		}
		time.Sleep(50 * time.Millisecond) // room for a stray put to land
		if l := lease(t, cli, r.Key()); l != -1 {
			t.Fatalf("key on lease %x after Deregister", l)
		}
		if err := r.Err(); !errors.Is(err, registry.ErrDeregistered) {
			t.Fatalf("Err() = %v, want ErrDeregistered", err)
		}
		if err := r.Deregister(t.Context()); !errors.Is(err, registry.ErrDeregistered) {
			t.Fatalf("second Deregister() = %v, want ErrDeregistered", err)
		}
	}
}

// TestClosedClientEnds: closing the client ends a registration and a view
// with ErrClosed, without hanging.
func TestClosedClientEnds(t *testing.T) {
	t.Parallel()
	cli := srv.NewClient(t)
	svc := "/closed/" + t.Name()
	r, err := registry.Register(t.Context(), cli, registry.Instance{Service: svc, Addr: "a:1"}, registry.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	v := registry.Watch(cli, svc)
	testutil.WaitClosed(t, v.Ready(), 30*time.Second, "Ready")
	cli.Close()
	testutil.WaitClosed(t, r.Done(), 30*time.Second, "Registration.Done")
	testutil.WaitClosed(t, v.Done(), 30*time.Second, "View.Done")
	if err := r.Err(); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("Registration.Err() = %v, want ErrClosed", err)
	}
	if err := v.Err(); !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("View.Err() = %v, want ErrClosed", err)
	}
	r.Deregister(t.Context()) // the key goes with its lease; no hang
	v.Close()
	eventually(t, "key expired", func() bool { return lease(t, srv.Client(), svc+"/a:1") == -1 })
}

// TestBorrowedSessionEnds: a registration on the caller's session ends
// with ErrSessionExpired when that session does.
func TestBorrowedSessionEnds(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	svc := testutil.Prefix(t, cli) + "svc"
	s := testutil.Session(t, cli, 10)
	r := register(t, cli, svc, "a", registry.WithSession(s))
	if got := r.Status().Lease; got != s.Lease() {
		t.Fatalf("Status().Lease = %x, want the session's %x", got, s.Lease())
	}
	s.Close()
	testutil.WaitClosed(t, r.Done(), 30*time.Second, "Done")
	if err := r.Err(); !errors.Is(err, registry.ErrSessionExpired) {
		t.Fatalf("Err() = %v, want ErrSessionExpired", err)
	}
}

// TestDeregisterRevokesEarlierLeases: a registrant cut off for longer than
// its TTL moves to a new lease while etcd still holds the old one (kept
// alive here by another client, as a keep-alive applied late or a leader
// election would): Deregister revokes the old lease too, so a put sent on
// it and applied late cannot bring the key back.
func TestDeregisterRevokesEarlierLeases(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	root := es.Client()
	cut := es.ProxyClient(t, 0)
	r := register(t, cut, "/svc", "a", registry.WithTTL(2))
	old := r.Status().Lease
	kctx, stopKeep := context.WithCancel(t.Context())
	kch, err := root.KeepAlive(kctx, old)
	if err != nil {
		stopKeep()
		t.Fatal(err)
	}
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		for range kch { // closed when kctx ends or the lease is revoked
		}
	}()
	defer func() { stopKeep(); <-kept }()
	es.Member(0).Blackhole()
	t.Cleanup(es.Member(0).Unblackhole) // before Deregister, which needs etcd
	eventually(t, "status not registered", func() bool { return !r.Status().Registered })
	es.Member(0).Unblackhole()
	eventually(t, "registered on a new lease", func() bool {
		st := r.Status()
		return st.Registered && st.Lease != old
	})
	if err := r.Deregister(t.Context()); err != nil {
		t.Fatalf("Deregister() = %v", err)
	}
	ttl, err := root.TimeToLive(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Fatalf("earlier lease %x has TTL %d after Deregister, want revoked", old, ttl.TTL)
	}
	if _, err := root.Put(t.Context(), r.Key(), "late", clientv3.WithLease(old)); err == nil {
		t.Fatalf("a put on the earlier lease succeeded after Deregister")
	}
}
