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

// primitives are the contender kinds a scenario runs for.
var primitives = []struct {
	name string
	new  func(s *concurrency.Session, name string) contender
	// lost and expired are the package's ErrLost and ErrSessionExpired.
	lost, expired error
}{
	{"mutex", func(s *concurrency.Session, name string) contender { return mutexContender{mutex.New(s, name)} }, mutex.ErrLost, mutex.ErrSessionExpired},
	{"election", func(s *concurrency.Session, name string) contender { return electionContender{election.New(s, name)} }, election.ErrLost, election.ErrSessionExpired},
}
