package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// keepAlives records when a client last received a lease keep-alive
// response: the client's own view of its keep-alive working.
type keepAlives struct {
	mu   sync.Mutex
	last time.Time
}

func (k *keepAlives) Last() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last
}

type recvStream struct {
	grpc.ClientStream
	k *keepAlives
}

func (s recvStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.k.mu.Lock()
		s.k.last = time.Now()
		s.k.mu.Unlock()
	}
	return err
}

// keepAliveClient returns a client of eps that records its keep-alive
// responses, closed when the test ends: configured as etcdclient.Config
// does (reconnect backoff capped at 3 s) if capped, else as clientv3's
// defaults leave gRPC (backoff up to 120 s).
func keepAliveClient(t *testing.T, eps []string, capped bool) (*clientv3.Client, *keepAlives) {
	t.Helper()
	k := new(keepAlives)
	intercept := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != "/etcdserverpb.Lease/LeaseKeepAlive" {
			return cs, err
		}
		return recvStream{cs, k}, nil
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if capped {
		ec := etcdclient.Default()
		ec.Endpoints = eps
		var err error
		if cfg, err = ec.ClientConfig(); err != nil {
			t.Fatal(err)
		}
	}
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainStreamInterceptor(intercept))
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, k
}

// minSeen follows v and records the fewest instances it ever showed
// after Ready; stop ends it and returns that number.
func minSeen(v *registry.View) (stop func() int) {
	done := make(chan struct{})
	least := -1
	go func() {
		defer close(done)
		<-v.Ready()
		for {
			if n := len(v.Snapshot().Instances); least == -1 || n < least {
				least = n
			}
			if _, ok := <-v.Changes(); !ok {
				return
			}
		}
	}()
	return func() int {
		v.Close()
		<-done
		return least
	}
}

// deletions counts the delete events under prefix in etcd's history
// after revision from.
func deletions(t *testing.T, cli *clientv3.Client, prefix string, from int64) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	now, err := cli.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for resp := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				n++
			}
		}
		if resp.Header.Revision >= now.Header.Revision {
			break
		}
	}
	return n
}

// TestWholeClusterOutageShorterThanTTL stops etcd (a one-member cluster:
// the whole of it) for less than the registrations' TTL and starts it
// again: no View sees an instance go and etcd's history has no deletion.
// It reports how long after etcd is back each registrant's keep-alive
// answers again, on a client with etcdclient's reconnect backoff (capped
// at 3 s) and on one with gRPC's default (up to 120 s).
func TestWholeClusterOutageShorterThanTTL(t *testing.T) {
	t.Parallel()
	es := etcdtest.NewServer(t)
	const svc, ttl = "/svc", 60 // well past the outage plus gRPC's default backoff after it
	capped, cappedKA := keepAliveClient(t, es.Endpoints(), true)
	plain, plainKA := keepAliveClient(t, es.Endpoints(), false)
	register(t, capped, svc, "capped", registry.WithTTL(ttl))
	register(t, plain, svc, "default", registry.WithTTL(ttl))
	start, err := es.Client().Get(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	v := registry.Watch(es.NewClient(t), svc)
	stop := minSeen(v)
	waitReady(t, v)

	down := time.Now()
	es.Member(0).Stop()
	time.Sleep(8 * time.Second) // long enough for gRPC's backoff to grow past 3 s
	if err := es.Member(0).Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// The first answer after etcd is back is the figure: later ones come
	// every TTL/3.
	var cappedAt, plainAt time.Time
	eventually(t, "keep-alives answered again", func() bool {
		if l := cappedKA.Last(); cappedAt.IsZero() && l.After(back) {
			cappedAt = l
		}
		if l := plainKA.Last(); plainAt.IsZero() && l.After(back) {
			plainAt = l
		}
		return !cappedAt.IsZero() && !plainAt.IsZero()
	})
	eventually(t, "view not stale", func() bool { return !v.Stale() })
	if n := stop(); n != 2 {
		t.Errorf("a View showed %d instances during the outage, want 2 throughout", n)
	}
	if n := deletions(t, es.Client(), svc+"/", start.Header.Revision); n != 0 {
		t.Errorf("%d deletions in etcd's history, want 0", n)
	}
	t.Logf("etcd down %v (TTL %d s); keep-alive answered %v after etcd was back with etcdclient's backoff (cap 3 s), %v with gRPC's default",
		back.Sub(down).Round(time.Millisecond), ttl,
		cappedAt.Sub(back).Round(time.Millisecond), plainAt.Sub(back).Round(time.Millisecond))
}

func waitReady(t *testing.T, v *registry.View) {
	t.Helper()
	select {
	case <-v.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("View not ready within 30 s")
	}
}
