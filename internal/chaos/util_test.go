package chaos_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// keysUnder returns the keys under prefix, read through cli.
func keysUnder(tb testing.TB, cli *clientv3.Client, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		tb.Fatalf("Get %s: %v", prefix, err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// exists reports whether key exists, read through cli.
func exists(tb testing.TB, cli *clientv3.Client, key string) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		tb.Fatalf("Get %s: %v", key, err)
	}
	return resp.Count > 0
}

// leaseAlive reports whether the server still knows lease id.
func leaseAlive(tb testing.TB, cli *clientv3.Client, id clientv3.LeaseID) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.TimeToLive(ctx, id)
	if err != nil {
		return false
	}
	return resp.TTL > 0
}

// lockSetAdd is the lock-set step of a holder with token tok: read the
// set, add x, write it back, all fenced by tok. It reports whether the
// write was acknowledged.
func lockSetAdd(ctx context.Context, fc *chaos.FenceClient, tok int64, x int) (bool, error) {
	set, err := fc.Read(ctx, tok)
	if err != nil {
		return false, err
	}
	if err := fc.Write(ctx, tok, append(slices.Clone(set), x)); err != nil {
		return false, err
	}
	return true, nil
}

// envInt returns the integer in environment variable name, or def: the
// soak raises trial counts this way.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// contender is what the scenarios need of a primitive that one holder at a
// time owns: a mutex (Lock/Unlock) or an election (Campaign/Resign).
type contender interface {
	Acquire(ctx context.Context) error
	Release(ctx context.Context) error
	Token() int64
	Key() string
	Done() <-chan struct{}
	Err() error
}

type mutexContender struct{ *mutex.Mutex }

func (m mutexContender) Acquire(ctx context.Context) error { return m.Lock(ctx) }
func (m mutexContender) Release(ctx context.Context) error { return m.Unlock(ctx) }

type electionContender struct{ *election.Election }

func (e electionContender) Acquire(ctx context.Context) error { return e.Campaign(ctx, "chaos") }
func (e electionContender) Release(ctx context.Context) error { return e.Resign(ctx) }

// writerContender takes an rwmutex's write lock.
type writerContender struct{ *rwmutex.RWMutex }

func (w writerContender) Acquire(ctx context.Context) error { return w.Lock(ctx) }
func (w writerContender) Release(ctx context.Context) error { return w.Unlock(ctx) }

// readerContender takes an rwmutex's read lock: it excludes a writer, not
// other readers, so the scenarios put it behind a writer.
type readerContender struct{ *rwmutex.RWMutex }

func (r readerContender) Acquire(ctx context.Context) error { return r.RLock(ctx) }
func (r readerContender) Release(ctx context.Context) error { return r.RUnlock(ctx) }

// semLimit and semWeight make a semaphore a contender: two requests of 2
// permits out of 3 cannot hold together, so one waits behind the other as
// behind a lock, while the weights still take part in the admission sums.
const semLimit, semWeight = 3, 2

type semaphoreContender struct{ *semaphore.Semaphore }

func (m semaphoreContender) Acquire(ctx context.Context) error {
	return m.Semaphore.Acquire(ctx, semWeight)
}
func (m semaphoreContender) Release(ctx context.Context) error { return m.Semaphore.Release(ctx) }

// newFunc makes a contender on name through session s.
type newFunc func(s *concurrency.Session, name string) contender

// primitive is one row of the contender table.
type primitive struct {
	name string
	// new makes the contender under test: L3's successor, L6's acquirer,
	// L7's waiter.
	new newFunc
	// holder, if set, makes the contender that holds first (L3's
	// partitioned holder, L7's holder); otherwise new does.
	holder newFunc
	// lost and expired are the package's ErrLost and ErrSessionExpired.
	lost, expired error
	// scale is the share of a scenario's trials this row runs, in
	// quarters: 4 for the rows the scenarios were sized for, less for the
	// rows added later, to keep tier 1 near 75 s with -race on 2 cores.
	scale int
}

// holds returns the constructor of the contender that holds first.
func (p primitive) holds() newFunc {
	if p.holder != nil {
		return p.holder
	}
	return p.new
}

// trials scales n, a scenario's trial count for a full row, to p's share
// (at least 1).
func (p primitive) trials(n int) int { return max(1, n*p.scale/4) }

func newMutex(s *concurrency.Session, name string) contender {
	return mutexContender{mutex.New(s, name)}
}
func newElection(s *concurrency.Session, name string) contender {
	return electionContender{election.New(s, name)}
}
func newWriter(s *concurrency.Session, name string) contender {
	return writerContender{rwmutex.New(s, name)}
}
func newReader(s *concurrency.Session, name string) contender {
	return readerContender{rwmutex.New(s, name)}
}
func newSemaphore(s *concurrency.Session, name string) contender {
	return semaphoreContender{semaphore.New(s, name, semLimit)}
}

// primitives are the contender kinds a scenario runs for: the mutex and
// the election in full, and, with fewer trials each, the rwmutex's write
// lock behind a writer ("rwmutex"), its read lock behind a writer
// ("rwmutex-read": the reader must not hold before the writer's hold has
// ended), its write lock behind a reader ("rwmutex-write-after-read"), and
// the semaphore (2 permits of 3, behind another 2 of 3).
var primitives = []primitive{
	{name: "mutex", new: newMutex, lost: mutex.ErrLost, expired: mutex.ErrSessionExpired, scale: 4},
	{name: "election", new: newElection, lost: election.ErrLost, expired: election.ErrSessionExpired, scale: 4},
	{name: "rwmutex", new: newWriter, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 2},
	{name: "rwmutex-read", new: newReader, holder: newWriter, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 2},
	{name: "rwmutex-write-after-read", new: newWriter, holder: newReader, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 1},
	{name: "semaphore", new: newSemaphore, lost: semaphore.ErrLost, expired: semaphore.ErrSessionExpired, scale: 2},
}
