package stm_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// incrementer adds one to key in a transaction and reports how many times
// its function ran.
type incrementer func(ctx context.Context, cli *clientv3.Client, key string) (attempts int, err error)

func oursIncr(ctx context.Context, cli *clientv3.Client, key string) (int, error) {
	res, err := stm.Run(ctx, cli, func(tx stm.Tx) error {
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(v)
		tx.Put(key, strconv.Itoa(n+1))
		return nil
	})
	return res.Attempts, err
}

func etcdIncr(ctx context.Context, cli *clientv3.Client, key string) (int, error) {
	attempts := 0
	_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
		attempts++
		n, _ := strconv.Atoi(s.Get(key))
		s.Put(key, strconv.Itoa(n+1))
		return nil
	}, concurrency.WithAbortContext(ctx))
	return attempts, err
}

// side runs n transactions of a benchmark and returns how many times the
// transaction functions ran.
type side func(n int) (attempts int64, err error)

// compare runs b.N transactions on each of coordkit's stm and etcd's STM,
// alternating in rounds so that drift in the machine's load falls on both
// alike, and reports both rates, attempts per commit and the ratios.
func compare(b *testing.B, ours, etcds side) {
	const rounds = 8
	var elapsed [2]time.Duration
	var attempts [2]int64
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		for i, s := range []side{ours, etcds} {
			start := time.Now()
			a, err := s(n)
			elapsed[i] += time.Since(start)
			attempts[i] += a
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	rate := func(i int) float64 { return float64(b.N) / elapsed[i].Seconds() }
	per := func(i int) float64 { return float64(attempts[i]) / float64(b.N) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rate(0), "stm-commits/s")
	b.ReportMetric(rate(1), "etcd-commits/s")
	b.ReportMetric(rate(0)/rate(1), "commits-ratio")
	b.ReportMetric(per(0), "stm-attempts/commit")
	b.ReportMetric(per(1), "etcd-attempts/commit")
	b.ReportMetric(per(0)/per(1), "attempts-ratio")
}

// BenchmarkCounterW8 has 8 clients, each with its own connection,
// increment one key: every commit conflicts with the others' attempts.
//
//	go test -run '^$' -bench . -benchtime 8000x ./stm/
func BenchmarkCounterW8(b *testing.B) {
	const workers = 8
	cli, p := benchSetup(b)
	key := p + "counter"
	clients := make([]*clientv3.Client, workers)
	for i := range clients {
		clients[i] = testutil.Client(b, srv)
	}
	counter := func(incr incrementer) side {
		return func(n int) (int64, error) {
			var (
				left     atomic.Int64
				attempts atomic.Int64
				failed   atomic.Pointer[error]
				wg       sync.WaitGroup
			)
			left.Store(int64(n))
			for _, c := range clients {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						a, err := incr(b.Context(), c, key)
						attempts.Add(int64(a))
						if err != nil {
							failed.Store(&err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := failed.Load(); err != nil {
				return attempts.Load(), *err
			}
			return attempts.Load(), nil
		}
	}
	compare(b, counter(oursIncr), counter(etcdIncr))
	resp, err := cli.Get(b.Context(), key)
	if err != nil {
		b.Fatal(err)
	}
	if got := string(resp.Kvs[0].Value); got != strconv.Itoa(2*b.N) {
		b.Fatalf("counter = %s after %d increments", got, 2*b.N)
	}
}

// BenchmarkTransferUncontended moves money between two of five accounts
// from one client: two keys read in one round trip (GetMany, and
// WithPrefetch for etcd's STM), two written in the commit.
func BenchmarkTransferUncontended(b *testing.B) {
	cli, p := benchSetup(b)
	for i := range 5 {
		if _, err := cli.Put(b.Context(), p+strconv.Itoa(i), "1000000"); err != nil {
			b.Fatal(err)
		}
	}
	next := 0
	transfers := func(transfer func(from, to string) error) side {
		return func(n int) (int64, error) {
			for range n {
				next++
				if err := transfer(p+strconv.Itoa(next%5), p+strconv.Itoa((next+1)%5)); err != nil {
					return 0, err
				}
			}
			return int64(n), nil
		}
	}
	ours := transfers(func(from, to string) error {
		_, err := stm.Run(b.Context(), cli, func(tx stm.Tx) error {
			v, err := tx.GetMany(from, to)
			if err != nil {
				return err
			}
			move(v[0], v[1], tx.Put, from, to)
			return nil
		})
		return err
	})
	etcds := transfers(func(from, to string) error {
		_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
			move(s.Get(from), s.Get(to), func(k, v string, _ ...clientv3.OpOption) { s.Put(k, v) }, from, to)
			return nil
		}, concurrency.WithAbortContext(b.Context()), concurrency.WithPrefetch(from, to))
		return err
	})
	compare(b, ours, etcds)
}

func move(a, b string, put func(k, v string, opts ...clientv3.OpOption), from, to string) {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	put(from, strconv.Itoa(x-1))
	put(to, strconv.Itoa(y+1))
}

func benchSetup(b *testing.B) (*clientv3.Client, string) {
	cli := testutil.Client(b, srv)
	p := testutil.Prefix(b, cli)
	b.Cleanup(func() {
		if _, err := cli.Delete(context.Background(), p, clientv3.WithPrefix()); err != nil {
			b.Error(err)
		}
	})
	return cli, p
}
