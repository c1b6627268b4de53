package registry_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/observe"
	"github.com/coordkit/coordkit/registry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// writeOnlyClient starts an etcd of its own with auth on, and returns its
// root client and a client of a user whose role may write the keys under
// prefix but not read them, so every watch it opens is refused.
func writeOnlyClient(t *testing.T, prefix string) (root, cli *clientv3.Client) {
	t.Helper()
	own := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	root = own.Client()
	ctx := t.Context()
	if _, err := root.RoleAdd(ctx, "writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.RoleGrantPermission(ctx, "writer", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserAdd(ctx, "writer", "writerpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "writer", "writer"); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: own.Endpoints(), Username: "writer", Password: "writerpw",
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return root, cli
}

// TestRefusedWatchIsReported: a registrant that may write its key but not
// watch it stays registered, shows the refusal in Status().Err rather
// than claiming all is well, re-opens the watch with a growing pause
// rather than at once, and still puts its key back when someone deletes
// it.
func TestRefusedWatchIsReported(t *testing.T) {
	t.Parallel()
	root, cli := writeOnlyClient(t, "svc/")
	var mu sync.Mutex
	var refusals []time.Time
	o := &observe.Observer{WatchRestarted: func(w observe.WatchRestart) {
		if w.Reason != observe.ReasonRefused {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		refusals = append(refusals, time.Now())
	}}
	r := register(t, cli, "svc", "a", registry.WithObserver(o))
	eventually(t, "refusal in Status().Err", func() bool {
		return errors.Is(r.Status().Err, rpctypes.ErrPermissionDenied)
	})

	// Paced: the pauses between the first 10 refusals add up to at least
	// half of 10 ms × (1 + 1.5 + … + 1.5⁹) ≈ 570 ms, where a loop that
	// re-opens the watch at once spends a few round trips on each.
	const n = 10
	eventually(t, "10 refused watches", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(refusals) > n
	})
	mu.Lock()
	spent := refusals[n].Sub(refusals[0])
	mu.Unlock()
	if spent < 500*time.Millisecond {
		t.Fatalf("%d refused watches re-opened within %v: not paced", n, spent)
	}

	if _, err := root.Delete(t.Context(), r.Key()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key put back", func() bool { return lease(t, root, r.Key()) != -1 })
}
