package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// lockctlAt runs lockctl against ep.
func lockctlAt(t *testing.T, ep string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb lockedBuffer
	code = run(t.Context(), append([]string{"--endpoints", ep}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestReleaseOnlyHolds: release refuses a name whose keys are ordinary
// data, with or without a lease, and deletes nothing; it breaks a real
// hold.
func TestReleaseOnlyHolds(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.NewClient(t)
	ep := srv.Endpoints()[0]
	ctx := t.Context()
	if _, err := cli.Put(ctx, "config/db/url", "postgres://db"); err != nil {
		t.Fatal(err)
	}
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "cache/x/entry", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config/db", "cache/x"} {
		code, out, errs := lockctlAt(t, ep, "release", "--force", "--yes", name)
		if code != ExitUsage || !strings.Contains(errs, "not holds") {
			t.Errorf("release %s = %d, stdout %q, stderr %q; want %d and a refusal", name, code, out, errs, ExitUsage)
		}
	}
	for _, key := range []string{"config/db/url", "cache/x/entry"} {
		if resp, err := cli.Get(ctx, key); err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("%s after release: %v, %v; want it still there", key, resp, err)
		}
	}

	// A hold whose lease also carries data: revoking would delete the data.
	s, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shared := mutex.New(s, "jobs/shared")
	if err := shared.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	code, _, errs := lockctlAt(t, ep, "release", "--force", "--yes", "jobs/shared")
	if code != ExitUsage || !strings.Contains(errs, "cache/x/entry") {
		t.Errorf("release of a hold whose lease carries data = %d, stderr %q; want %d naming the data key", code, errs, ExitUsage)
	}
	if resp, err := cli.Get(ctx, "cache/x/entry"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("data on the holder's lease after release: %v, %v; want it still there", resp, err)
	}

	// A real hold is broken.
	s2, err := concurrency.NewSession(cli)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m := mutex.New(s2, "jobs/real")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	code, out, errs := lockctlAt(t, ep, "release", "--force", "--yes", "jobs/real")
	if code != 0 || !strings.Contains(out, "released jobs/real/") {
		t.Fatalf("release of a hold = %d, stdout %q, stderr %q", code, out, errs)
	}
	<-m.Done()
}

// TestLsListsOnlyNames: ls shows the coordkit names with their kind and
// numbers of holders and waiters, and leaves ordinary data out.
func TestLsListsOnlyNames(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.NewClient(t)
	ep := srv.Endpoints()[0]
	ctx := t.Context()
	if _, err := cli.Put(ctx, "app/config/url", "x"); err != nil {
		t.Fatal(err)
	}
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "app/cache/k", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	sess := func() *concurrency.Session {
		s, err := concurrency.NewSession(cli)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := mutex.New(sess(), "app/lock").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := semaphore.New(sess(), "app/pool", 3).Acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := rwmutex.New(sess(), "app/rw").RLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A waiter behind the lock's holder: its key is in line before ls runs.
	waiter := sess()
	w := mutex.New(waiter, "app/lock")
	errc := make(chan error, 1)
	go func() { errc <- w.Lock(ctx) }()
	waitFor(t, func() bool {
		resp, err := cli.Get(ctx, "app/lock/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	})
	defer func() {
		waiter.Close()
		<-errc
	}()

	code, out, errs := lockctlAt(t, ep, "ls", "-o", "json", "app/")
	if code != 0 {
		t.Fatalf("ls = %d, stderr %s", code, errs)
	}
	if !strings.Contains(out, "\n  {") {
		t.Errorf("ls -o json is not indented:\n%s", out)
	}
	var got []lsName
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]lsName{
		"app/lock": {Name: "app/lock", Kind: kindLock, Holders: 1, Waiters: 1},
		"app/pool": {Name: "app/pool", Kind: kindSemaphore, Holders: 2},
		"app/rw":   {Name: "app/rw", Kind: kindRWLock, Holders: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("ls = %+v, want %+v", got, want)
	}
	for _, g := range got {
		if g != want[g.Name] {
			t.Errorf("ls: %+v, want %+v", g, want[g.Name])
		}
	}
	code, out, _ = lockctlAt(t, ep, "ls")
	if code != 0 || strings.Contains(out, "config") || strings.Contains(out, "cache") || !strings.Contains(out, "app/pool") {
		t.Errorf("ls = %d:\n%s\nwant the names and no data keys", code, out)
	}
}
