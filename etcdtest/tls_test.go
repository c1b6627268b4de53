package etcdtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// tlsClient returns a client of eps that trusts ca and presents cert/key
// when given, closed when the test ends.
func tlsClient(t *testing.T, eps []string, ca, cert, key string) *clientv3.Client {
	t.Helper()
	tc, err := (&transport.TLSInfo{TrustedCAFile: ca, CertFile: cert, KeyFile: key}).ClientConfig()
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// getErr returns the error of a Get with a short deadline.
func getErr(t *testing.T, cli *clientv3.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := cli.Get(ctx, "k")
	return err
}

func TestTLS(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithTLS())
	files := srv.TLSFiles()
	require.True(t, strings.HasPrefix(srv.Endpoints()[0], "https://"), "Endpoints() = %v", srv.Endpoints())
	require.True(t, strings.HasPrefix(srv.Member(0).ProxyEndpoint(), "https://"))

	_, err := srv.Client().Put(t.Context(), "k", "v")
	require.NoError(t, err)
	_, err = srv.ProxyClient(t, 0).Get(t.Context(), "k")
	require.NoError(t, err, "TLS through the proxy")

	// The files are what an outside client needs.
	_, err = tlsClient(t, srv.Endpoints(), files.CA, "", "").Get(t.Context(), "k")
	require.NoError(t, err)

	// Another authority's CA does not verify the server.
	other, err := etcdtest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	err = getErr(t, tlsClient(t, srv.Endpoints(), other.CA, "", ""))
	require.Error(t, err, "a client that trusts another CA")
}

func TestClientCertAuth(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithClientCertAuth())
	files := srv.TLSFiles()
	_, err := srv.Client().Put(t.Context(), "k", "v")
	require.NoError(t, err)
	_, err = tlsClient(t, srv.Endpoints(), files.CA, files.Cert, files.Key).Get(t.Context(), "k")
	require.NoError(t, err)

	// Without a client certificate, or with one of another authority, the
	// server ends the handshake.
	err = getErr(t, tlsClient(t, srv.Endpoints(), files.CA, "", ""))
	require.Error(t, err, "without a client certificate")
	other, err := etcdtest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	err = getErr(t, tlsClient(t, srv.Endpoints(), files.CA, other.Cert, other.Key))
	require.Error(t, err, "with another authority's client certificate")
}

func TestAuth(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	ctx := t.Context()
	_, err := srv.Client().Put(ctx, "any/k", "v")
	require.NoError(t, err, "the cluster's client is root")
	require.NoError(t, srv.AddUser(ctx, "alice", "alicepw", "jobs/", "locks/"))

	alice, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Username: "alice", Password: "alicepw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer alice.Close()
	for _, k := range []string{"jobs/x", "locks/y"} {
		_, err = alice.Put(ctx, k, "v")
		require.NoError(t, err, "Put(%q) inside alice's prefixes", k)
	}
	_, err = alice.Put(ctx, "other/x", "v")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied, "Put outside alice's prefixes")
	_, err = alice.Get(ctx, "jobs", clientv3.WithPrefix())
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied, "the prefix is jobs/, not jobs")

	_, err = clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), Username: "alice", Password: "wrong", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.True(t, errors.Is(err, rpctypes.ErrAuthFailed), "wrong password: %v", err)

	noauth := etcdtest.NewServer(t)
	require.NoError(t, noauth.AddUser(ctx, "bob", "pw", "b/"), "AddUser without auth on")
}

func TestTLSWithAuth(t *testing.T) {
	srv := etcdtest.NewServer(t, etcdtest.WithClientCertAuth(), etcdtest.WithAuth("pw"))
	require.NoError(t, srv.AddUser(t.Context(), "carol", "cpw", "c/"))
	_, err := srv.NewClient(t).Put(t.Context(), "x", "v")
	require.NoError(t, err)
}
