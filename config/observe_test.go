package config_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/observe"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A Watcher with an observer reports its watch's restart when its member
// loses its leader (a watch that requires one is cancelled), and goes on
// to apply what is published after.
func TestObserverSeesWatchRestart(t *testing.T) {
	t.Parallel()
	own := etcdtest.NewCluster(t, 3)
	lead, err := own.WaitLeader(t.Context())
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{own.Member(lead).Endpoint()},
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	name := "observed/app"
	_, err = config.Publish(within(t), cli, name, []byte(`{"max_conns":1}`))
	require.NoError(t, err)

	var broken atomic.Int64
	o := &observe.Observer{WatchRestarted: func(e observe.WatchRestart) {
		if e.Kind == observe.KindConfig && e.Name == name+"/current" && e.Reason == observe.ReasonBroken {
			broken.Add(1)
		}
	}}
	w, err := config.Watch(t.Context(), cli, name, decodeLimits, config.WithObserver(o))
	require.NoError(t, err)
	defer w.Close()

	for i := range own.Size() {
		if i != lead {
			own.Member(i).Stop()
		}
	}
	eventually(t, "a broken watch reported", func() bool { return broken.Load() > 0 })
	for i := range own.Size() {
		if i != lead {
			require.NoError(t, own.Member(i).Restart(within(t)))
		}
	}
	_, err = own.WaitLeader(within(t))
	require.NoError(t, err)
	v, err := config.Publish(within(t), cli, name, []byte(`{"max_conns":2}`))
	require.NoError(t, err)
	require.NoError(t, w.WaitFor(within(t), v))
	require.Equal(t, 2, w.Load().MaxConns)
}
