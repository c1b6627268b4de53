package main

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/coordkit/coordkit/stm"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func stmWorkloads() []workload {
	return []workload{
		{name: "stm/counter-W8", unit: "commits", ours: stmCounterLoop(8, stmIncr), theirs: stmCounterLoop(8, etcdSTMIncr), vs: "etcd STM"},
		{name: "stm/transfer-uncontended", unit: "commits", ours: stmTransferLoop(stmTransfer), theirs: stmTransferLoop(etcdSTMTransfer), vs: "etcd STM"},
	}
}

// stmIncrTxn and stmTransferTxn run one transaction, on either side, and
// return how many times its function ran.
type (
	stmIncrTxn     func(ctx context.Context, cli *clientv3.Client, key string) (attempts int, err error)
	stmTransferTxn func(ctx context.Context, cli *clientv3.Client, from, to string) (attempts int, err error)
)

func stmIncr(ctx context.Context, cli *clientv3.Client, key string) (int, error) {
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

func etcdSTMIncr(ctx context.Context, cli *clientv3.Client, key string) (int, error) {
	attempts := 0
	_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
		attempts++
		n, _ := strconv.Atoi(s.Get(key))
		s.Put(key, strconv.Itoa(n+1))
		return nil
	}, concurrency.WithAbortContext(ctx))
	return attempts, err
}

// stmMove takes 1 from the from balance a and gives it to the to balance b.
func stmMove(a, b string, put func(k, v string), from, to string) {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	put(from, strconv.Itoa(x-1))
	put(to, strconv.Itoa(y+1))
}

// stmTransfer reads both balances in one round trip (GetMany), as
// etcdSTMTransfer does with WithPrefetch.
func stmTransfer(ctx context.Context, cli *clientv3.Client, from, to string) (int, error) {
	res, err := stm.Run(ctx, cli, func(tx stm.Tx) error {
		v, err := tx.GetMany(from, to)
		if err != nil {
			return err
		}
		stmMove(v[0], v[1], func(k, v string) { tx.Put(k, v) }, from, to)
		return nil
	})
	return res.Attempts, err
}

func etcdSTMTransfer(ctx context.Context, cli *clientv3.Client, from, to string) (int, error) {
	attempts := 0
	_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
		attempts++
		stmMove(s.Get(from), s.Get(to), func(k, v string) { s.Put(k, v) }, from, to)
		return nil
	}, concurrency.WithAbortContext(ctx), concurrency.WithPrefetch(from, to))
	return attempts, err
}

// stmCounterLoop runs w clients, each with its own connection, incrementing
// one key as fast as they can: every commit conflicts with the others'
// attempts. Latency is per commit, retries included.
func stmCounterLoop(w int, incr stmIncrTxn) side {
	return func(ctx context.Context, e *env) (result, error) {
		key := e.prefix + "counter"
		clis := make([]*clientv3.Client, w)
		for i := range clis {
			c, err := e.client()
			if err != nil {
				return result{}, err
			}
			clis[i] = c
		}
		defer clis[0].Delete(context.WithoutCancel(ctx), e.prefix, clientv3.WithPrefix())
		var (
			mu       sync.Mutex // guards r, attempts
			r        result
			attempts int
			wg       sync.WaitGroup
			errc     = make(chan error, w)
		)
		start := time.Now()
		for _, c := range clis {
			wg.Go(func() {
				for time.Since(start) < e.duration {
					t0 := time.Now()
					n, err := incr(ctx, c, key)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					r.lat = append(r.lat, time.Since(t0))
					r.ops++
					attempts += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		r.elapsed = time.Since(start)
		close(errc)
		r.extra = map[string]float64{"attempts/commit": float64(attempts) / float64(max(1, r.ops))}
		return r, <-errc
	}
}

// stmTransferLoop moves money between two of five accounts from one client,
// one transfer after another: two keys read, two written per commit.
func stmTransferLoop(transfer stmTransferTxn) side {
	return func(ctx context.Context, e *env) (result, error) {
		cli, err := e.client()
		if err != nil {
			return result{}, err
		}
		defer cli.Delete(context.WithoutCancel(ctx), e.prefix, clientv3.WithPrefix())
		acct := func(i int) string { return e.prefix + strconv.Itoa(i%5) }
		for i := range 5 {
			if _, err := cli.Put(ctx, acct(i), "1000000"); err != nil {
				return result{}, err
			}
		}
		var r result
		attempts := 0
		start := time.Now()
		for i := 0; time.Since(start) < e.duration; i++ {
			t0 := time.Now()
			n, err := transfer(ctx, cli, acct(i), acct(i+1))
			if err != nil {
				return r, err
			}
			r.lat = append(r.lat, time.Since(t0))
			r.ops++
			attempts += n
		}
		r.elapsed = time.Since(start)
		r.extra = map[string]float64{"attempts/commit": float64(attempts) / float64(max(1, r.ops))}
		return r, nil
	}
}
