package follow_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestStartedOnRelist: when the store moved between the caller's read and
// the watch, the relist comes with the revision the watch started after,
// which covers the change made in the gap.
func TestStartedOnRelist(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	rev := put(t, cli, pfx+"a")
	gap := put(t, cli, pfx+"b") // after the read, before the watch
	f := follow.New(cli, pfx, rev, follow.WithPrefix())
	defer f.Close()
	if got := f.Started(); got != 0 {
		t.Fatalf("Started() before a watch = %d, want 0", got)
	}
	_, relist, err := f.Next(t.Context())
	if err != nil || !relist {
		t.Fatalf("Next() = relist %v, %v; want a relist", relist, err)
	}
	if got := f.Started(); got < gap {
		t.Fatalf("Started() = %d, want at least the gap's revision %d", got, gap)
	}
	if _, err := cli.Delete(t.Context(), pfx, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}

// TestResumeDeliversTheGap: with WithResume the watch starts right after
// the caller's revision: a change made in the gap is delivered as an
// event, with no relist.
func TestResumeDeliversTheGap(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	rev := put(t, cli, pfx+"a")
	put(t, cli, pfx+"b") // after the read, before the watch
	steps := watcher(t, cli, follow.New(cli, pfx, rev, follow.WithPrefix(), follow.WithResume()), pfx)
	wantStep(t, next(t, steps), step{keys: []string{"b"}})
	put(t, cli, pfx+"c")
	wantStep(t, next(t, steps), step{keys: []string{"c"}})
	if _, err := cli.Delete(t.Context(), pfx, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}
