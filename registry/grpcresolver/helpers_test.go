package grpcresolver_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// server is a real gRPC server (grpc-go's health service) on 127.0.0.1
// that counts the calls it serves.
type server struct {
	addr  string
	calls atomic.Int64
	srv   *grpc.Server
}

// newServer starts a server, stopped when the test ends.
func newServer(t *testing.T) *server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: lis.Addr().String()}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		s.calls.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s.srv, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(lis)
	}()
	t.Cleanup(func() { s.srv.Stop(); <-done })
	return s
}

// register registers s as instance id of svc, deregistered when the test
// ends.
func register(t *testing.T, cli *clientv3.Client, svc, id string, s *server, md map[string]string) *registry.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := registry.Register(ctx, cli, registry.Instance{Service: svc, ID: id, Addr: s.addr, Metadata: md})
	if err != nil {
		t.Fatalf("Register() = %v", err)
	}
	t.Cleanup(func() {
		if err := r.Deregister(context.Background()); err != nil && !errors.Is(err, registry.ErrDeregistered) && !errors.Is(err, registry.ErrClosed) {
			t.Errorf("Deregister() = %v", err)
		}
	})
	return r
}

// dial returns a round_robin ClientConn to target through b, closed when
// the test ends.
func dial(t *testing.T, target string, b resolver.Builder) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(b),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		t.Fatalf("NewClient(%q) = %v", target, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// call makes one health check through cc, waiting for a ready instance.
func call(t *testing.T, cc *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("Check() = %v", err)
	}
}

// eventually fails the test unless cond holds within a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spread makes calls through cc until a batch of 30 reaches exactly the
// servers in want and none of the others, and fails the test if that does
// not happen within a generous bound.
func spread(t *testing.T, cc *grpc.ClientConn, all []*server, want ...*server) {
	t.Helper()
	eventually(t, "calls spread over the wanted servers", func() bool {
		before := make([]int64, len(all))
		for i, s := range all {
			before[i] = s.calls.Load()
		}
		for range 30 {
			call(t, cc)
		}
		for i, s := range all {
			got := s.calls.Load() - before[i]
			wanted := false
			for _, w := range want {
				wanted = wanted || w == s
			}
			if (got > 0) != wanted {
				return false
			}
		}
		return true
	})
}

// recorder is a resolver.ClientConn that records what a resolver tells
// it, for the properties a real ClientConn does not expose.
type recorder struct {
	mu     sync.Mutex // guards states, errs
	states []resolver.State
	errs   []error
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) UpdateState(s resolver.State) error {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
	r.poke()
	return nil
}

func (r *recorder) ReportError(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) NewAddress([]resolver.Address) { panic("deprecated: not called") }

func (r *recorder) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

// snapshot returns copies of what was recorded.
func (r *recorder) snapshot() ([]resolver.State, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]resolver.State(nil), r.states...), append([]error(nil), r.errs...)
}
