package stm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func keysOf(kvs []stm.KV) string {
	var ks []string
	for _, kv := range kvs {
		ks = append(ks, kv.Key[strings.LastIndex(kv.Key, "/")+1:]+"="+kv.Value)
	}
	return strings.Join(ks, " ")
}

func TestRangeSeesOwnWrites(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, cli, p+"r/"+k, k)
	}
	put(t, cli, p+"s", "outside")
	r, end := p+"r/", clientv3.GetPrefixRangeEnd(p+"r/")

	_, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		kvs, err := tx.Range(r, end, 3)
		require.NoError(t, err)
		require.Equal(t, "a=a b=b c=c", keysOf(kvs))
		require.NotZero(t, kvs[0].ModRevision)

		tx.Put(r+"aa", "new")
		tx.Delete(r + "b")
		tx.Put(r+"c", "C")
		tx.Put(r+"z", "past the limit")
		kvs, err = tx.Range(r, end, 3)
		require.NoError(t, err)
		require.Equal(t, "a=a aa=new c=C", keysOf(kvs))
		require.Zero(t, kvs[1].ModRevision, "a key written by the transaction has no revision yet")

		kvs, err = tx.Range(r, end, 0)
		require.NoError(t, err)
		require.Equal(t, "a=a aa=new c=C d=d e=e z=past the limit", keysOf(kvs))

		kvs, err = tx.Range(r+"b", r+"d", 0)
		require.NoError(t, err)
		require.Equal(t, "c=C", keysOf(kvs))

		kvs, err = tx.Range(r+"d", "\x00", 3)
		require.NoError(t, err)
		require.Equal(t, "d=d e=e z=past the limit", keysOf(kvs), "\\x00 reads every key from start")
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "new", get(t, cli, r+"aa"))
	require.Equal(t, "<none>", get(t, cli, r+"b"))
}

// A range read is validated at commit: a key added to, changed in or
// removed from what it returned makes the commit fail, and the retry sees
// the change. A change outside what a limited read covered does not.
func TestRangePhantom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		limit    int64
		change   func(ctx context.Context, cli *clientv3.Client, r string) error
		iso      stm.Isolation
		attempts int
		want     string
	}{
		{name: "insert", change: putKey("b2"), attempts: 2, want: "a b b2 c"},
		{name: "insert before", change: putKey("0"), attempts: 2, want: "0 a b c"},
		{name: "insert after", change: putKey("d"), attempts: 2, want: "a b c d"},
		{name: "update", change: putKey("b"), attempts: 2, want: "a b c"},
		{name: "delete", change: delKey("b"), attempts: 2, want: "a c"},
		{name: "delete last", change: delKey("c"), attempts: 2, want: "a b"},
		{name: "limit insert inside", limit: 2, change: putKey("a2"), attempts: 2, want: "a a2"},
		{name: "limit delete inside", limit: 2, change: delKey("a"), attempts: 2, want: "b c"},
		{name: "limit insert past", limit: 2, change: putKey("b2"), attempts: 1, want: "a b"},
		{name: "limit delete past", limit: 2, change: delKey("c"), attempts: 1, want: "a b"},
		{name: "empty range insert", change: func(ctx context.Context, cli *clientv3.Client, r string) error {
			_, err := cli.Put(ctx, r+"zz/x", "")
			return err
		}, attempts: 2, want: "x"},
		{name: "Serializable insert", iso: stm.Serializable, change: putKey("b2"), attempts: 2, want: "a b b2 c"},
		{name: "RepeatableReads insert", iso: stm.RepeatableReads, change: putKey("b2"), attempts: 2, want: "a b b2 c"},
		{name: "RepeatableReads delete", iso: stm.RepeatableReads, change: delKey("b"), attempts: 2, want: "a c"},
		// ReadCommitted checks nothing: the phantom goes unnoticed.
		{name: "ReadCommitted insert", iso: stm.ReadCommitted, change: putKey("b2"), attempts: 1, want: "a b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli, p := setup(t)
			r := p + "r/"
			for _, k := range []string{"a", "b", "c"} {
				put(t, cli, r+k, "v")
			}
			other := testutil.Client(t, srv)
			start, end := r, clientv3.GetPrefixRangeEnd(r)
			if strings.HasPrefix(tt.name, "empty") {
				start, end = r+"zz/", clientv3.GetPrefixRangeEnd(r+"zz/")
			}
			attempts := 0
			res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
				attempts++
				kvs, err := tx.Range(start, end, tt.limit)
				if err != nil {
					return err
				}
				if attempts == 1 {
					if err := tt.change(t.Context(), other, r); err != nil {
						return err
					}
				}
				var ks []string
				for _, kv := range kvs {
					ks = append(ks, kv.Key[strings.LastIndex(kv.Key, "/")+1:])
				}
				tx.Put(p+"seen", strings.Join(ks, " "))
				return nil
			}, stm.WithIsolation(tt.iso))
			require.NoError(t, err)
			require.Equal(t, tt.attempts, res.Attempts, "Run() attempts")
			require.Equal(t, tt.attempts-1, res.Conflicts)
			require.Equal(t, tt.want, get(t, cli, p+"seen"))
		})
	}
}

func putKey(k string) func(context.Context, *clientv3.Client, string) error {
	return func(ctx context.Context, cli *clientv3.Client, r string) error {
		_, err := cli.Put(ctx, r+k, "new")
		return err
	}
}

func delKey(k string) func(context.Context, *clientv3.Client, string) error {
	return func(ctx context.Context, cli *clientv3.Client, r string) error {
		resp, err := cli.Delete(ctx, r+k)
		if err == nil && resp.Deleted != 1 {
			err = errors.New("nothing deleted")
		}
		return err
	}
}

// A transaction whose compares exceed etcd's --max-txn-ops (128) fails at
// once: retrying cannot help.
func TestTooManyComparesFailsAtOnce(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	ops := make([]clientv3.Op, 0, 100)
	for i := range 200 {
		ops = append(ops, clientv3.OpPut(p+"r/"+string(rune('a'+i/26))+string(rune('a'+i%26)), "v"))
		if len(ops) == 100 {
			_, err := cli.Txn(t.Context()).Then(ops...).Commit()
			require.NoError(t, err)
			ops = ops[:0]
		}
	}
	res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		kvs, err := tx.Range(p+"r/", clientv3.GetPrefixRangeEnd(p+"r/"), 0)
		if err != nil {
			return err
		}
		require.Len(t, kvs, 200)
		tx.Put(p+"n", "200")
		return nil
	})
	require.ErrorIs(t, err, rpctypes.ErrTooManyOps)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "<none>", get(t, cli, p+"n"))
}
