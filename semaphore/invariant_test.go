package semaphore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestNeverOverLimit has 10 clients contend for a semaphore of limit 3 with
// weights of 1 to 3, some requests cancelled by short deadlines and some
// made with TryAcquire. Once granted, a holder writes a marker key
// "held/<its key>" = weight through a guarded Txn, and deletes it before
// Release: the markers are what holders did, in etcd's own order. The
// prefix's history is then replayed, and at every revision:
//
//   - the markers' weights add up to at most the limit;
//   - every marker belongs to a key that the admission rule (the weights of
//     the keys ahead plus its own fit in the limit) grants at that revision,
//     so nobody acted before it was admitted;
//   - every key carries the same limit.
//
// Against a vacuous pass it also requires that every client finished its
// rounds, that grants overlapped (two markers at once), that requests
// waited (a key not granted by the rule), and that some were cancelled.
func TestNeverOverLimit(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const clients, rounds, limit = 10, 12, 3
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	// A bound on the whole run, so that a wedged semaphore fails the test
	// rather than hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start, err := cli.Get(t.Context(), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	var (
		inside    atomic.Int64 // weights held, as the holders see it
		granted   atomic.Int64
		cancelled atomic.Int64
		wg        sync.WaitGroup
		errc      = make(chan error, clients)
	)
	for i := range clients {
		c := testutil.Client(t, srv)
		m := semaphore.New(testutil.Session(t, c, 10), pfx+"sem", limit)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for range rounds {
				if err := hold(ctx, c, m, pfx, rng, &inside, limit); err != nil {
					switch {
					case errors.Is(err, semaphore.ErrNoPermits), errors.Is(err, context.DeadlineExceeded):
						cancelled.Add(1)
						continue
					}
					errc <- err
					return
				}
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	end, err := cli.Get(t.Context(), pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)

	var maxHeld, waited int
	revs := testutil.Replay(t, cli, pfx, start.Header.Revision, end.Header.Revision, func(rev int64, kvs map[string]*mvccpb.KeyValue) {
		line, markers := split(kvs, pfx)
		grantedKeys := map[string]bool{}
		var sum int64
		for _, kv := range line {
			var r struct{ Weight, Limit int64 }
			if err := json.Unmarshal(kv.Value, &r); err != nil || r.Limit != limit {
				t.Errorf("rev %d: key %s has value %q", rev, kv.Key, kv.Value)
			}
			if sum += r.Weight; sum <= limit {
				grantedKeys[strings.TrimPrefix(string(kv.Key), pfx+"sem/")] = true
			} else {
				waited++
			}
		}
		var held int64
		for name, kv := range markers {
			var w int64
			fmt.Sscan(string(kv.Value), &w)
			held += w
			if !grantedKeys[name] {
				t.Errorf("rev %d: %s acts as a holder but the rule does not grant it", rev, name)
			}
		}
		if held > limit {
			t.Errorf("rev %d: holders hold %d permits, limit %d", rev, held, limit)
		}
		maxHeld = max(maxHeld, len(markers))
	})
	t.Logf("%d grants, %d cancelled or refused, %d revisions checked, at most %d holders at once", granted.Load(), cancelled.Load(), revs, maxHeld)
	require.GreaterOrEqual(t, granted.Load(), int64(clients*rounds/2), "too few grants to judge")
	require.Greater(t, cancelled.Load(), int64(0), "no request was cancelled or refused")
	require.GreaterOrEqual(t, maxHeld, 2, "grants never overlapped")
	require.Greater(t, waited, 0, "nobody ever waited")
}

// hold runs one round: a request of random weight (sometimes with a short
// deadline, sometimes TryAcquire), then the marker, a short critical
// section, and the release.
func hold(ctx context.Context, cli *clientv3.Client, m *semaphore.Semaphore, pfx string, rng *rand.Rand, inside *atomic.Int64, limit int64) error {
	n := []int{1, 1, 1, 1, 2, 2, 3}[rng.IntN(7)]
	var err error
	switch p := rng.IntN(10); {
	case p == 0:
		err = m.TryAcquire(ctx, n)
	case p <= 2:
		short, cancel := context.WithTimeout(ctx, time.Duration(1+rng.IntN(40))*time.Millisecond)
		err = m.Acquire(short, n)
		cancel()
	default:
		err = m.Acquire(ctx, n)
	}
	if err != nil {
		return err
	}
	// Whatever goes wrong, release: a worker that kept its permits would
	// wedge the others.
	marker := pfx + "held/" + strings.TrimPrefix(m.Key(), pfx+"sem/")
	resp, err := m.Txn(ctx).Then(clientv3.OpPut(marker, fmt.Sprint(n))).Commit()
	switch {
	case err != nil:
	case !resp.Succeeded:
		err = fmt.Errorf("guarded marker write failed: grant lost (%v)", m.Err())
	default:
		if in := inside.Add(int64(n)); in > limit {
			err = fmt.Errorf("%d permits held at once, limit %d", in, limit)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		inside.Add(-int64(n))
		_, derr := cli.Delete(ctx, marker)
		err = errors.Join(err, derr)
	}
	return errors.Join(err, m.Release(ctx))
}

// split separates the semaphore's keys, in line order, from the markers,
// which it returns by the name of the key they stand for.
func split(kvs map[string]*mvccpb.KeyValue, pfx string) ([]*mvccpb.KeyValue, map[string]*mvccpb.KeyValue) {
	var line []*mvccpb.KeyValue
	markers := map[string]*mvccpb.KeyValue{}
	for k, kv := range kvs {
		switch {
		case strings.HasPrefix(k, pfx+"sem/"):
			line = append(line, kv)
		case strings.HasPrefix(k, pfx+"held/"):
			markers[strings.TrimPrefix(k, pfx+"held/")] = kv
		}
	}
	slices.SortFunc(line, func(a, b *mvccpb.KeyValue) int { return int(a.CreateRevision - b.CreateRevision) })
	return line, markers
}
