package rwmutex_test

import (
	"context"
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
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestExclusionAtEveryRevision has 10 clients take the lock, mostly to
// read, sometimes to write, some calls cancelled by short deadlines and
// some made with TryLock or TryRLock. Once it holds, a client writes a
// marker key "held/<its key>" through a guarded Txn, and deletes it before
// unlocking: the markers are what holders did, in etcd's own order. The
// prefix's history is then replayed, and at every revision:
//
//   - a writer's marker is the only marker (no reader with a writer, no two
//     writers);
//   - every marker belongs to a key that the lock's rule lets hold at that
//     revision (a writer: no key ahead; a reader: no writer ahead), so
//     nobody acted before it held.
//
// Against a vacuous pass it also requires that every client finished, that
// readers held together and writers held, that a reader waited behind a
// writer, and that some calls were cancelled or refused.
func TestExclusionAtEveryRevision(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	const clients, rounds = 10, 12
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	// A bound on the whole run, so that a wedged lock fails the test rather
	// than hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	start, err := cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	var (
		readers, writers atomic.Int64 // holders, as they see themselves
		granted          atomic.Int64
		refused          atomic.Int64
		wg               sync.WaitGroup
		errc             = make(chan error, clients)
	)
	for i := range clients {
		c := testutil.Client(t, srv)
		m := rwmutex.New(testutil.Session(t, c, 10), pfx+"lock")
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for range rounds {
				err := round(ctx, c, m, pfx, rng, &readers, &writers)
				switch {
				case err == nil:
					granted.Add(1)
				case errors.Is(err, rwmutex.ErrLocked), errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
					refused.Add(1)
				default:
					errc <- err
					return
				}
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

	var maxReaders, writes, readerWaited int
	revs := testutil.Replay(t, cli, pfx, start.Header.Revision, end.Header.Revision, func(rev int64, kvs map[string]*mvccpb.KeyValue) {
		line, markers := split(kvs, pfx)
		holds := map[string]bool{}
		writerAhead := false
		for i, kv := range line {
			name := strings.TrimPrefix(string(kv.Key), pfx+"lock/")
			switch {
			case strings.HasPrefix(name, "write/"):
				holds[name] = i == 0
				writerAhead = true
			case strings.HasPrefix(name, "read/"):
				holds[name] = !writerAhead
				if writerAhead {
					readerWaited++
				}
			default:
				t.Errorf("rev %d: unexpected key %s", rev, kv.Key)
			}
		}
		var r, w int
		for _, name := range markers {
			if strings.HasPrefix(name, "write/") {
				w++
			} else {
				r++
			}
			if !holds[name] {
				t.Errorf("rev %d: %s acts as a holder but the rule does not let it hold", rev, name)
			}
		}
		if w > 1 || (w == 1 && r > 0) {
			t.Errorf("rev %d: %d writers and %d readers hold at once", rev, w, r)
		}
		maxReaders = max(maxReaders, r)
		if w > 0 {
			writes++
		}
	})
	t.Logf("%d grants, %d cancelled or refused, %d revisions checked, at most %d readers at once", granted.Load(), refused.Load(), revs, maxReaders)
	require.GreaterOrEqual(t, granted.Load(), int64(clients*rounds/2), "too few grants to judge")
	require.Greater(t, refused.Load(), int64(0), "no call was cancelled or refused")
	require.GreaterOrEqual(t, maxReaders, 2, "readers never held together")
	require.Greater(t, writes, 0, "no writer ever held")
	require.Greater(t, readerWaited, 0, "no reader ever waited behind a writer")
}

// round takes the lock once, to write (3 in 10) or to read, sometimes with
// a short deadline or without waiting, then writes the marker, holds for a
// moment, deletes the marker and unlocks.
func round(ctx context.Context, cli *clientv3.Client, m *rwmutex.RWMutex, pfx string, rng *rand.Rand, readers, writers *atomic.Int64) error {
	write := rng.IntN(10) < 3
	lock, try, unlock := m.RLock, m.TryRLock, m.RUnlock
	if write {
		lock, try, unlock = m.Lock, m.TryLock, m.Unlock
	}
	var err error
	switch p := rng.IntN(10); {
	case p == 0:
		err = try(ctx)
	case p <= 2:
		short, cancel := context.WithTimeout(ctx, time.Duration(1+rng.IntN(40))*time.Millisecond)
		err = lock(short)
		cancel()
	default:
		err = lock(ctx)
	}
	if err != nil {
		return err
	}
	// Whatever goes wrong, unlock: a client that kept the lock would wedge
	// the others.
	marker := pfx + "held/" + strings.TrimPrefix(m.Key(), pfx+"lock/")
	resp, err := m.Txn(ctx).Then(clientv3.OpPut(marker, "")).Commit()
	switch {
	case err != nil:
	case !resp.Succeeded:
		err = fmt.Errorf("guarded marker write failed: hold lost (%v)", m.Err())
	default:
		mine, other := readers, writers
		if write {
			mine, other = writers, readers
		}
		n := mine.Add(1)
		if o := other.Load(); (write && (n > 1 || o > 0)) || (!write && o > 0) {
			err = fmt.Errorf("in process: %d readers and %d writers at once", readers.Load(), writers.Load())
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		mine.Add(-1)
		_, derr := cli.Delete(ctx, marker)
		err = errors.Join(err, derr)
	}
	return errors.Join(err, unlock(ctx))
}

// split separates the lock's keys, in line order, from the markers, which
// it returns by the name of the key they stand for ("read/…", "write/…").
func split(kvs map[string]*mvccpb.KeyValue, pfx string) ([]*mvccpb.KeyValue, []string) {
	var line []*mvccpb.KeyValue
	var markers []string
	for k, kv := range kvs {
		switch {
		case strings.HasPrefix(k, pfx+"lock/"):
			line = append(line, kv)
		case strings.HasPrefix(k, pfx+"held/"):
			markers = append(markers, strings.TrimPrefix(k, pfx+"held/"))
		}
	}
	slices.SortFunc(line, func(a, b *mvccpb.KeyValue) int { return int(a.CreateRevision - b.CreateRevision) })
	return line, markers
}
