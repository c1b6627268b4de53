package testutil

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Wait is a blocking call under test: it waits on name, through cli, until
// something happens that the test never makes happen.
type Wait func(ctx context.Context, cli *clientv3.Client, name string) error

// startWait runs wait in its own goroutine on context.Background, so that
// only what the test does to etcd or the client can end it, and checks that
// it is still waiting a moment later. Cleanup waits for it.
func startWait(t *testing.T, cli *clientv3.Client, name string, wait Wait) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- wait(context.Background(), cli, name) }()
	select {
	case err := <-errc:
		t.Fatalf("the wait returned %v before the test ended it", err)
	case <-time.After(time.Second):
	}
	return errc
}

// endOf returns what wait returned, failing the test if it does not return
// within a generous bound.
func endOf(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("the wait did not return within 60 s of %s", what)
		return nil
	}
}

// EndsOnClose calls wait on a name under the test's prefix, through a
// client of srv of its own, closes the client while wait blocks, and
// returns what wait returned then; it fails the test if wait does not
// return. Cleanup deletes what wait left under the prefix.
func EndsOnClose(t *testing.T, srv *etcdtest.Cluster, wait Wait) error {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pfx := "/test/" + strings.ReplaceAll(t.Name(), " ", "_") + "/"
	t.Cleanup(func() {
		if _, err := srv.Client().Delete(context.Background(), pfx, clientv3.WithPrefix()); err != nil {
			t.Error(err)
		}
	})
	errc := startWait(t, cli, pfx+"name", wait)
	cli.Close()
	return endOf(t, errc, "closing its client")
}

// EndsWhenRefused starts an etcd of its own with auth on, and calls wait on
// "app/name" as a user whose role covers "app/". While wait blocks, it takes
// that permission away and restarts the member, so that wait's watch is
// opened again and refused. It returns what wait returned then, and fails
// the test if wait does not return: a refusal must not be retried.
func EndsWhenRefused(t *testing.T, wait Wait) error {
	t.Helper()
	own, cli := AuthServer(t)
	errc := startWait(t, cli, "app/name", wait)
	RevokeAndRestart(t, own)
	return endOf(t, errc, "the refusal")
}

// AuthServer starts an etcd of its own with auth on, and returns it with a
// client of the user "app", whose role covers the keys under "app/" only.
func AuthServer(t *testing.T) (*etcdtest.Cluster, *clientv3.Client) {
	t.Helper()
	own := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	if err := own.AddUser(t.Context(), "app", "apppw", "app/"); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: own.Endpoints(), Username: "app", Password: "apppw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return own, cli
}

// RevokeAndRestart takes away the permission of [AuthServer]'s user on
// "app/" and restarts the member, so that the user's watches are opened
// again, and refused.
func RevokeAndRestart(t *testing.T, own *etcdtest.Cluster) {
	t.Helper()
	if _, err := own.Client().RoleRevokePermission(t.Context(), "app", "app/", clientv3.GetPrefixRangeEnd("app/")); err != nil {
		t.Fatal(err)
	}
	own.Member(0).Stop()
	if err := own.Member(0).Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// RequireEndsOnClose is [EndsOnClose] for a wait that must return an error.
func RequireEndsOnClose(t *testing.T, srv *etcdtest.Cluster, wait Wait) {
	t.Helper()
	if err := EndsOnClose(t, srv, wait); err == nil {
		t.Fatal("the wait returned nil after its client was closed, want an error")
	}
}

// RequireEndsWhenRefused is [EndsWhenRefused] for a wait that must return
// an error wrapping rpctypes.ErrPermissionDenied.
func RequireEndsWhenRefused(t *testing.T, wait Wait) {
	t.Helper()
	if err := EndsWhenRefused(t, wait); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("wait = %v, want an error wrapping %v", err, rpctypes.ErrPermissionDenied)
	}
}
