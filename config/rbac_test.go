package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A user whose role may read the namespace "prod/" and write nothing: every
// publish is refused with ErrRefused and a message naming the prefix, and
// Get and Watch work inside the namespace only.
func TestReadOnlyUser(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	root := own.Client()
	ctx := within(t)
	_, err := config.Publish(ctx, root, "prod/db", []byte(`{"max_conns":1}`))
	require.NoError(t, err)
	_, err = root.RoleAdd(ctx, "reader")
	require.NoError(t, err)
	_, err = root.RoleGrantPermission(ctx, "reader", "prod/", clientv3.GetPrefixRangeEnd("prod/"), clientv3.PermissionType(clientv3.PermRead))
	require.NoError(t, err)
	_, err = root.UserAdd(ctx, "reader", "readerpw")
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx, "reader", "reader")
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: own.Endpoints(), Username: "reader", Password: "readerpw",
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()

	for _, name := range []string{"prod/db", "staging/db"} {
		_, err = config.Publish(ctx, cli, name, []byte(`{"max_conns":2}`))
		require.ErrorIs(t, err, config.ErrRefused, "publish %s", name)
		require.True(t, errors.Is(err, rpctypes.ErrPermissionDenied), "etcd's error is wrapped too: %v", err)
		require.Contains(t, err.Error(), `"`+name+`/"`)
	}
	_, err = config.Get(ctx, cli, "staging/db")
	require.ErrorIs(t, err, config.ErrRefused)
	cur, err := config.Get(ctx, cli, "prod/db")
	require.NoError(t, err)
	require.EqualValues(t, 1, cur.Version)

	w, err := config.Watch(ctx, cli, "prod/db", decodeLimits)
	require.NoError(t, err)
	defer w.Close()
	v, err := config.Publish(ctx, root, "prod/db", []byte(`{"max_conns":3}`))
	require.NoError(t, err)
	require.NoError(t, w.WaitFor(ctx, v))
	require.Equal(t, 3, w.Load().MaxConns)
}
