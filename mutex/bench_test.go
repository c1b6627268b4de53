package mutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// BenchmarkLockUnlock is an uncontended Lock+Unlock cycle, coordkit's and
// etcd's on the same server. cmd/coordbench prints the ratios.
func BenchmarkLockUnlock(b *testing.B) {
	cli := testutil.Client(b, srv)
	s := testutil.Session(b, cli, 10)
	b.Run("coordkit", func(b *testing.B) {
		m := mutex.New(s, "/bench/coordkit")
		for b.Loop() {
			if err := m.Lock(b.Context()); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		m := concurrency.NewMutex(s, "/bench/etcd")
		for b.Loop() {
			if err := m.Lock(b.Context()); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFloor is the least a lock can cost: a put-if-absent Txn on a
// leased key, then its Delete.
func BenchmarkFloor(b *testing.B) {
	cli := testutil.Client(b, srv)
	s := testutil.Session(b, cli, 10)
	key := "/bench/floor"
	for b.Loop() {
		_, err := cli.Txn(b.Context()).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, "", clientv3.WithLease(s.Lease()))).Commit()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.Delete(b.Context(), key); err != nil {
			b.Fatal(err)
		}
	}
}
