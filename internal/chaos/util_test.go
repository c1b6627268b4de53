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
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/testutil/holds"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
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

// semLimit and semWeight make a semaphore hold like a lock: two requests
// of 2 permits out of 3 cannot hold together, so one waits behind the other
// as behind a lock, while the weights still take part in the admission sums.
const semLimit, semWeight = 3, 2

// primitive is one row of the table of primitives a scenario runs for.
type primitive struct {
	name string
	// new makes the hold under test: L3's successor, L6's acquirer, L7's
	// waiter.
	new testutil.NewHold
	// holder, if set, makes the hold taken first (L3's partitioned
	// holder, L7's holder); otherwise new does.
	holder testutil.NewHold
	// lost and expired are the package's ErrLost and ErrSessionExpired.
	lost, expired error
	// scale is the share of a scenario's trials this row runs, in
	// quarters: 4 for the rows the scenarios were sized for, less for the
	// rows added later, to keep tier 1 near 75 s with -race on 2 cores.
	scale int
}

// holds returns the constructor of the hold taken first.
func (p primitive) holds() testutil.NewHold {
	if p.holder != nil {
		return p.holder
	}
	return p.new
}

// trials scales n, a scenario's trial count for a full row, to p's share
// (at least 1).
func (p primitive) trials(n int) int { return max(1, n*p.scale/4) }

// primitives are the kinds of hold a scenario runs for: the mutex and
// the election in full, and, with fewer trials each, the rwmutex's write
// lock behind a writer ("rwmutex"), its read lock behind a writer
// ("rwmutex-read": the reader must not hold before the writer's hold has
// ended), its write lock behind a reader ("rwmutex-write-after-read"), and
// the semaphore (2 permits of 3, behind another 2 of 3).
var primitives = []primitive{
	{name: "mutex", new: holds.NewMutex, lost: mutex.ErrLost, expired: mutex.ErrSessionExpired, scale: 4},
	{name: "election", new: holds.NewElection, lost: election.ErrLost, expired: election.ErrSessionExpired, scale: 4},
	{name: "rwmutex", new: holds.NewWriter, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 2},
	{name: "rwmutex-read", new: holds.NewReader, holder: holds.NewWriter, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 2},
	{name: "rwmutex-write-after-read", new: holds.NewWriter, holder: holds.NewReader, lost: rwmutex.ErrLost, expired: rwmutex.ErrSessionExpired, scale: 1},
	{name: "semaphore", new: holds.NewSemaphore(semLimit, semWeight), lost: semaphore.ErrLost, expired: semaphore.ErrSessionExpired, scale: 2},
}
