// Package rbactest checks that every primitive works for a user whose
// etcd role covers only the name it was given, and that the client closes
// afterwards: coordkit must never touch a key outside the names its user
// passes.
package rbactest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/session"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/queue"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

var srv *etcdtest.Cluster

func TestMain(m *testing.M) { testutil.Main(m, &srv) }

// pair is two processes of one limited user, each with its own client and
// session, contending for one name.
type pair struct {
	root   *clientv3.Client // sees every key: only the test's checks use it
	prefix string           // the only prefix the user's role covers
	name   string           // the primitive's name, under prefix
	a, b   *concurrency.Session
}

// async runs f on its own goroutine and returns its result.
func async(f func() error) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	return errc
}

// result waits, bounded, for a call started with async.
func result(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still blocked after 30s", what)
		return nil
	}
}

// waitKeys waits until n keys are under the user's prefix: a contender has
// joined the line and is waiting.
func (p *pair) waitKeys(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := p.root.Get(t.Context(), p.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count >= n
	}, 30*time.Second, 5*time.Millisecond, "no %d keys under %s", n, p.prefix)
}

var scenarios = []struct {
	name string
	run  func(ctx context.Context, t *testing.T, p *pair) error
}{
	{"mutex", func(ctx context.Context, t *testing.T, p *pair) error {
		a, b := mutex.New(p.a, p.name), mutex.New(p.b, p.name)
		return contend(ctx, t, p, a.Lock, a.Unlock, b.Lock, b.Unlock)
	}},
	{"rwmutex", func(ctx context.Context, t *testing.T, p *pair) error {
		a, b := rwmutex.New(p.a, p.name), rwmutex.New(p.b, p.name)
		if err := contend(ctx, t, p, a.RLock, a.RUnlock, b.Lock, b.Unlock); err != nil {
			return err
		}
		return contend(ctx, t, p, b.Lock, b.Unlock, a.RLock, a.RUnlock)
	}},
	{"semaphore", func(ctx context.Context, t *testing.T, p *pair) error {
		a, b := semaphore.New(p.a, p.name, 1), semaphore.New(p.b, p.name, 1)
		one := func(s *semaphore.Semaphore) func(context.Context) error {
			return func(ctx context.Context) error { return s.Acquire(ctx, 1) }
		}
		return contend(ctx, t, p, one(a), a.Release, one(b), b.Release)
	}},
	{"election", runElection},
	{"queue", runQueue},
	{"barrier", runBarrier},
	{"doublebarrier", func(ctx context.Context, t *testing.T, p *pair) error {
		a, b := barrier.NewDouble(p.a, p.name, 2), barrier.NewDouble(p.b, p.name, 2)
		entered := async(func() error { return a.Enter(ctx) })
		if err := b.Enter(ctx); err != nil {
			return fmt.Errorf("b.Enter: %w", err)
		}
		if err := result(t, entered, "a.Enter"); err != nil {
			return fmt.Errorf("a.Enter: %w", err)
		}
		left := async(func() error { return a.Leave(ctx) })
		if err := b.Leave(ctx); err != nil {
			return fmt.Errorf("b.Leave: %w", err)
		}
		return result(t, left, "a.Leave")
	}},
	{"stm", func(ctx context.Context, t *testing.T, p *pair) error {
		from, to := p.prefix+"from", p.prefix+"to"
		if _, err := p.root.Put(ctx, from, "100"); err != nil {
			return err
		}
		transfer := func(cli *clientv3.Client) error {
			for range 5 {
				_, err := stm.Run(ctx, cli, func(tx stm.Tx) error {
					vals, err := tx.GetMany(from, to)
					if err != nil {
						return err
					}
					f, _ := strconv.Atoi(vals[0])
					g, _ := strconv.Atoi(vals[1])
					tx.Put(from, strconv.Itoa(f-1))
					tx.Put(to, strconv.Itoa(g+1))
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
		other := async(func() error { return transfer(p.b.Client()) })
		if err := transfer(p.a.Client()); err != nil {
			return fmt.Errorf("a: %w", err)
		}
		if err := result(t, other, "b's transfers"); err != nil {
			return fmt.Errorf("b: %w", err)
		}
		resp, err := p.root.Get(ctx, to)
		require.NoError(t, err)
		require.Equal(t, "10", string(resp.Kvs[0].Value), "10 transfers of 1")
		_, err = p.root.Delete(ctx, p.prefix, clientv3.WithPrefix())
		return err
	}},
}

// contend takes the hold as a, then starts b's acquisition, waits until b
// waits in line, releases a's, and sees b acquire and release.
func contend(ctx context.Context, t *testing.T, p *pair, lockA, unlockA, lockB, unlockB func(context.Context) error) error {
	if err := lockA(ctx); err != nil {
		return fmt.Errorf("a acquire: %w", err)
	}
	got := async(func() error { return lockB(ctx) })
	p.waitKeys(t, 2)
	if err := unlockA(ctx); err != nil {
		return fmt.Errorf("a release: %w", err)
	}
	if err := result(t, got, "b acquire"); err != nil {
		return fmt.Errorf("b acquire: %w", err)
	}
	if err := unlockB(ctx); err != nil {
		return fmt.Errorf("b release: %w", err)
	}
	return nil
}

func runElection(ctx context.Context, t *testing.T, p *pair) error {
	a, b := election.New(p.a, p.name), election.New(p.b, p.name)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w := b.Watch(wctx)
	if err := a.Campaign(ctx, "a"); err != nil {
		return fmt.Errorf("a.Campaign: %w", err)
	}
	won := async(func() error { return b.Campaign(ctx, "b") })
	p.waitKeys(t, 2)
	if err := a.Resign(ctx); err != nil {
		return fmt.Errorf("a.Resign: %w", err)
	}
	if err := result(t, won, "b.Campaign"); err != nil {
		return fmt.Errorf("b.Campaign: %w", err)
	}
	// The watcher sees b lead; a may or may not show first.
	for li := range w.Leaders() {
		if li.Value == "b" {
			break
		}
	}
	if err := w.Err(); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	if err := b.Resign(ctx); err != nil {
		return fmt.Errorf("b.Resign: %w", err)
	}
	stop()
	for range w.Leaders() {
	}
	ran := false
	err := election.Run(ctx, p.a.Client(), p.name, func(context.Context, *election.Election) error {
		ran = true
		return nil
	}, election.WithTTL(5*time.Second))
	if err != nil || !ran {
		return fmt.Errorf("Run = %v, work ran %v", err, ran)
	}
	return nil
}

func runQueue(ctx context.Context, t *testing.T, p *pair) error {
	a := queue.New(p.a.Client(), p.name, queue.WithSession(p.a))
	b := queue.New(p.b.Client(), p.name, queue.WithSession(p.b))
	// b waits on an empty queue, then a's item reaches it.
	got := async(func() error {
		it, err := b.Dequeue(ctx)
		if err == nil && string(it.Value) != "1" {
			err = fmt.Errorf("Dequeue = %q, want 1", it.Value)
		}
		return err
	})
	if err := a.Enqueue(ctx, []byte("1")); err != nil {
		return fmt.Errorf("Enqueue: %w", err)
	}
	if err := result(t, got, "b.Dequeue"); err != nil {
		return fmt.Errorf("b.Dequeue: %w", err)
	}
	claimed := async(func() error {
		c, err := b.Claim(ctx)
		if err != nil {
			return err
		}
		return c.Ack(ctx)
	})
	if err := a.Enqueue(ctx, []byte("2")); err != nil {
		return fmt.Errorf("Enqueue: %w", err)
	}
	if err := result(t, claimed, "b.Claim, Ack"); err != nil {
		return fmt.Errorf("b.Claim, Ack: %w", err)
	}
	_, err := p.root.Delete(ctx, p.prefix, clientv3.WithPrefix())
	return err
}

func runBarrier(ctx context.Context, t *testing.T, p *pair) error {
	a := barrier.New(p.a.Client(), p.name)
	b := barrier.New(p.b.Client(), p.name)
	if err := a.Hold(ctx); err != nil {
		return fmt.Errorf("Hold: %w", err)
	}
	passed := async(func() error { return b.Wait(ctx) })
	// Wait must block while the barrier is held.
	select {
	case err := <-passed:
		return fmt.Errorf("Wait returned %v while held", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.Release(ctx); err != nil {
		return fmt.Errorf("Release: %w", err)
	}
	return result(t, passed, "b.Wait")
}

// limitedClient returns a client logged in as user, who may read and
// write prefix only.
func limitedClient(t *testing.T, auth *etcdtest.Cluster, user string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: auth.Endpoints(), Username: user, Password: user + "pw",
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	return cli
}

// Each primitive, used by two processes of a user whose role is readwrite
// on one prefix only, succeeds in every call; then both clients close.
// A primitive that read or watched a key outside the prefix would be
// refused (an error here), or would leave a watch re-opening in vain that
// can wedge the client's watch stream (a Close that does not return).
func TestLimitedUser(t *testing.T) {
	auth := etcdtest.NewServer(t, etcdtest.WithAuth("rootpw"))
	root := auth.Client()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			user, prefix := "u-"+sc.name, "rbac/"+sc.name+"/"
			require.NoError(t, auth.AddUser(t.Context(), user, user+"pw", prefix))
			ca, cb := limitedClient(t, auth, user), limitedClient(t, auth, user)
			p := &pair{root: root, prefix: prefix, name: prefix + "x"}
			var err error
			p.a, err = concurrency.NewSession(ca, concurrency.WithTTL(10))
			require.NoError(t, err)
			p.b, err = concurrency.NewSession(cb, concurrency.WithTTL(10))
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if err := sc.run(ctx, t, p); err != nil {
				t.Errorf("%s as a user limited to %q: %v", sc.name, prefix, err)
			}

			for _, s := range []*concurrency.Session{p.a, p.b} {
				require.NoError(t, s.Close())
				if st := session.Lookup(s); st != nil {
					testutil.WaitClosed(t, st.Done(), 30*time.Second, "the closed session's state")
				}
			}
			for _, cli := range []*clientv3.Client{ca, cb} {
				testutil.Within(t, 30*time.Second, "Client.Close()", func() {
					if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("Close: %v", err)
					}
				})
			}
			testutil.AssertEmpty(t, root, prefix)
		})
	}
}
