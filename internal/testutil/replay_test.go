package testutil_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestReplay writes a known history, including a Txn that changes two keys
// at one revision and writes outside the prefix, and checks that Replay
// shows every state of the prefix, once per revision, and nothing past to.
func TestReplay(t *testing.T) {
	srv := etcdtest.NewServer(t)
	cli := srv.Client()
	ctx := t.Context()
	put := func(k string) int64 {
		resp, err := cli.Put(ctx, k, "v")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	from := put("/r/a")
	put("/other")
	put("/r/b")
	resp, err := cli.Txn(ctx).Then(clientv3.OpDelete("/r/a"), clientv3.OpPut("/r/c", "v")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	to := resp.Header.Revision
	put("/r/d") // after to: not replayed

	var got [][]string
	n := testutil.Replay(t, cli, "/r/", from, to, func(rev int64, keys map[string]*mvccpb.KeyValue) {
		got = append(got, slices.Sorted(maps.Keys(keys)))
	})
	want := [][]string{{"/r/a", "/r/b"}, {"/r/b", "/r/c"}}
	if n != len(want) || !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("Replay() = %d revisions %v, want %v", n, got, want)
	}
}
