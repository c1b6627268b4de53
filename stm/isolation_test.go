package stm_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Each anomaly is staged deterministically: on the function's first
// attempt, another client commits a conflicting write in the middle of it.
// Where a level forbids the anomaly, the commit fails and the second
// attempt sees the other write; where it allows it, the first attempt
// commits on stale or inconsistent data.
func TestIsolationAnomalies(t *testing.T) {
	t.Parallel()
	type outcome struct {
		attempts int
		final    string
	}
	levels := []stm.Isolation{stm.SerializableSnapshot, stm.Serializable, stm.RepeatableReads, stm.ReadCommitted}
	tests := []struct {
		name  string
		setup map[string]string
		// fn is the transaction; interfere commits the concurrent write.
		fn   func(tx stm.Tx, p string, interfere func(map[string]string)) error
		want map[stm.Isolation]outcome // final: the state after Run, see state
	}{{
		// Read x, add 1 and write it back while another client sets x.
		name:  "lost update",
		setup: map[string]string{"x": "0"},
		fn: func(tx stm.Tx, p string, interfere func(map[string]string)) error {
			v, err := tx.Get(p + "x")
			if err != nil {
				return err
			}
			interfere(map[string]string{"x": "10"})
			n, _ := strconv.Atoi(v)
			tx.Put(p+"x", strconv.Itoa(n+1))
			return nil
		},
		want: map[stm.Isolation]outcome{
			stm.SerializableSnapshot: {2, "x=11"},
			stm.Serializable:         {2, "x=11"},
			stm.RepeatableReads:      {2, "x=11"},
			stm.ReadCommitted:        {1, "x=1"}, // the other write is lost
		},
	}, {
		// Read a, write b without reading it while another client writes b.
		name:  "blind write",
		setup: map[string]string{"a": "1", "b": "0"},
		fn: func(tx stm.Tx, p string, interfere func(map[string]string)) error {
			if _, err := tx.Get(p + "a"); err != nil {
				return err
			}
			interfere(map[string]string{"b": "other"})
			tx.Put(p+"b", "mine")
			return nil
		},
		want: map[stm.Isolation]outcome{
			stm.SerializableSnapshot: {2, "a=1 b=mine"}, // written key changed: retried
			stm.Serializable:         {1, "a=1 b=mine"}, // overwrites a write it never saw
			stm.RepeatableReads:      {1, "a=1 b=mine"},
			stm.ReadCommitted:        {1, "a=1 b=mine"},
		},
	}, {
		// Read a, then b, while another client moves 10 from a to b, and
		// record the total seen: 100 unless the reads were skewed.
		name:  "read skew",
		setup: map[string]string{"a": "50", "b": "50"},
		fn: func(tx stm.Tx, p string, interfere func(map[string]string)) error {
			a, err := tx.Get(p + "a")
			if err != nil {
				return err
			}
			interfere(map[string]string{"a": "40", "b": "60"})
			b, err := tx.Get(p + "b")
			if err != nil {
				return err
			}
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			tx.Put(p+"total", strconv.Itoa(x+y))
			return nil
		},
		want: map[stm.Isolation]outcome{
			stm.SerializableSnapshot: {2, "a=40 b=60 total=100"},
			stm.Serializable:         {2, "a=40 b=60 total=100"},
			stm.RepeatableReads:      {2, "a=40 b=60 total=100"}, // saw 110, did not commit it
			stm.ReadCommitted:        {1, "a=40 b=60 total=110"},
		},
	}, {
		// Two on-call doctors; one may go off call if the other is on.
		// Another client takes y off call meanwhile.
		name:  "write skew",
		setup: map[string]string{"x": "1", "y": "1"},
		fn: func(tx stm.Tx, p string, interfere func(map[string]string)) error {
			v, err := tx.GetMany(p+"x", p+"y")
			if err != nil {
				return err
			}
			interfere(map[string]string{"y": "0"})
			if v[0] == "1" && v[1] == "1" {
				tx.Put(p+"x", "0")
			}
			return nil
		},
		want: map[stm.Isolation]outcome{
			stm.SerializableSnapshot: {2, "x=1 y=0"},
			stm.Serializable:         {2, "x=1 y=0"},
			stm.RepeatableReads:      {2, "x=1 y=0"},
			stm.ReadCommitted:        {1, "x=0 y=0"}, // nobody on call
		},
	}}
	for _, tt := range tests {
		for _, iso := range levels {
			t.Run(tt.name+"/"+iso.String(), func(t *testing.T) {
				t.Parallel()
				cli, p := setup(t)
				for k, v := range tt.setup {
					put(t, cli, p+k, v)
				}
				other := testutil.Client(t, srv)
				attempts := 0
				res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
					attempts++
					return tt.fn(tx, p, func(kvs map[string]string) {
						if attempts > 1 {
							return
						}
						var ops []clientv3.Op
						for k, v := range kvs {
							ops = append(ops, clientv3.OpPut(p+k, v))
						}
						_, err := other.Txn(t.Context()).Then(ops...).Commit()
						require.NoError(t, err)
					})
				}, stm.WithIsolation(iso))
				require.NoError(t, err)
				want := tt.want[iso]
				require.Equal(t, want.attempts, res.Attempts, "Run() attempts")
				require.Equal(t, want.final, state(t, cli, p))
			})
		}
	}
}

// state returns the keys under p as "k=v k=v", in key order.
func state(t *testing.T, cli *clientv3.Client, p string) string {
	t.Helper()
	resp, err := cli.Get(t.Context(), p, clientv3.WithPrefix())
	require.NoError(t, err)
	s := ""
	for i, kv := range resp.Kvs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%s", kv.Key[len(p):], kv.Value)
	}
	return s
}
