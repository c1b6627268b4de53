// Discovery shows service discovery with a gRPC client: three instances of
// a gRPC server (grpc-go's health service), each a process of its own,
// register with coordkit's registry; a client dials the service by name
// and balances over them with round_robin. Then one instance is stopped
// cleanly, one is killed, and etcd is restarted.
//
//	go run ./examples/discovery [-endpoints URLS]
//
// With no -endpoints it starts an embedded etcd, and restarts it as the
// last step; with -endpoints it skips that step (your etcd is yours). It
// prints what happens and exits non-zero if anything it shows did not
// hold: the cleanly stopped instance leaves at once, the killed one within
// its TTL, no instance is lost across the etcd restart, and no call fails
// while an instance lives.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/registry"
	"github.com/coordkit/coordkit/registry/grpcresolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	service = "/examples/discovery/hello"
	// ttl is short so that the killed instance leaves within seconds.
	ttl = 3 * time.Second
	// instanceEnv, set to an ID, makes the program run as that instance.
	instanceEnv = "DISCOVERY_INSTANCE"
)

// serviceConfig balances with round_robin and retries a call that was
// cut off by an instance's death on another instance: a health check is
// idempotent.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "grpc.health.v1.Health"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
  }]
}`

func main() {
	if id := os.Getenv(instanceEnv); id != "" {
		if err := instance(context.Background(), id, os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "discovery: instance %s: %v\n", id, err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "discovery:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "discovery", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	cli, err := env.Client()
	if err != nil {
		return err
	}
	childArgs := args
	if env.Embedded() != nil {
		childArgs = []string{"-endpoints", env.Endpoints[0]}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	v := registry.Watch(cli, service)
	w := watchLosses(v)
	defer func() {
		v.Close() // ends w's goroutine
		w.wait()
	}()

	procs := map[string]*proc{}
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	for _, id := range []string{"a", "b", "c"} {
		p, err := startInstance(ctx, self, childArgs, id)
		if err != nil {
			return err
		}
		procs[id] = p
		env.Say("instance %s serves at %s (pid %d) and registered itself", id, p.addr, p.cmd.Process.Pid)
	}

	cc, err := grpc.NewClient(grpcresolver.Target(service),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcresolver.New(cli)),
		grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := startCaller(cc)
	defer c.stop()
	byAddr := func(ids ...string) []string {
		var out []string
		for _, id := range ids {
			out = append(out, procs[id].addr)
		}
		return out
	}

	env.Say("\n*** a client dials %s with round_robin ***", grpcresolver.Target(service))
	counts, err := c.spreadOver(byAddr("a", "b", "c"))
	if err != nil {
		return err
	}
	env.Say("calls spread over all three: %s", counts)

	env.Say("\n*** a is stopped cleanly (SIGTERM): it deregisters, then stops serving ***")
	t0 := time.Now()
	if err := procs["a"].signal(syscall.SIGTERM); err != nil {
		return err
	}
	gone, err := waitGone(v, "a")
	if err != nil {
		return err
	}
	env.Say("a left the registry %v after the signal", gone.Sub(t0).Round(time.Millisecond))
	// A lease kept alive always has more than two thirds of its TTL left,
	// so leaving within a third of it is the deregistration, not expiry.
	if gone.Sub(t0) >= ttl/3 {
		return fmt.Errorf("a left %v after a clean stop: not at once (the TTL is %v)", gone.Sub(t0), ttl)
	}
	if err := procs["a"].exited(); err != nil {
		return err
	}
	delete(procs, "a")
	if counts, err = c.spreadOver(byAddr("b", "c")); err != nil {
		return err
	}
	env.Say("calls go to b and c only: %s", counts)

	env.Say("\n*** b is killed (SIGKILL): it cannot deregister; its lease (TTL %v) expires ***", ttl)
	t0 = time.Now()
	c.killing()
	procs["b"].kill()
	delete(procs, "b")
	if gone, err = waitGone(v, "b"); err != nil {
		return err
	}
	env.Say("b left the registry %v after the kill", gone.Sub(t0).Round(100*time.Millisecond))
	if gone.Sub(t0) > ttl+2*time.Second {
		return fmt.Errorf("b left %v after it was killed: later than its TTL %v + 2 s", gone.Sub(t0), ttl)
	}
	if counts, err = c.spreadOver(byAddr("c")); err != nil {
		return err
	}
	env.Say("calls go to c only: %s", counts)

	if srv := env.Embedded(); srv == nil {
		env.Say("\n*** (etcd restart skipped: it is your etcd) ***")
	} else {
		env.Say("\n*** etcd is stopped and started again ***")
		t0 = time.Now()
		srv.Member(0).Stop()
		env.Say("etcd stopped after %v; the client keeps calling c meanwhile", time.Since(t0).Round(100*time.Millisecond))
		if err := srv.Member(0).Restart(ctx); err != nil {
			return err
		}
		if err := waitFresh(v); err != nil {
			return err
		}
		env.Say("etcd is back %v after the stop; the registry holds %v", time.Since(t0).Round(100*time.Millisecond), ids(v.Snapshot()))
		if got := ids(v.Snapshot()); !slices.Equal(got, []string{"c"}) {
			return fmt.Errorf("after the restart the registry holds %v, want [c]", got)
		}
		if counts, err = c.spreadOver(byAddr("c")); err != nil {
			return err
		}
		env.Say("calls still go to c: %s", counts)
	}

	// c is stopped next: from now on leaving is its right, and calls
	// would find no instance.
	c.stop()
	v.Close()
	w.wait()
	if err := procs["c"].term(); err != nil {
		return err
	}
	delete(procs, "c")
	calls, failed, inFlight, lastErr := c.result()
	env.Say("\n%d calls, %d failed (and %d in flight to b when it was killed)", calls, failed, inFlight)
	if failed > 0 {
		return fmt.Errorf("%d calls failed while an instance lived, the last with %w", failed, lastErr)
	}
	if len(w.lost) > 0 {
		return fmt.Errorf("live instances vanished from the registry: %v", w.lost)
	}
	env.Say("No live instance ever left the registry. All of it held.")
	return nil
}

// ids returns the IDs of the snapshot's instances.
func ids(s registry.Snapshot) []string {
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.ID)
	}
	return out
}

// waitGone returns when id has left v, or an error if it is still there
// well past its TTL.
func waitGone(v *registry.View, id string) (time.Time, error) {
	deadline := time.Now().Add(ttl + 30*time.Second)
	for slices.Contains(ids(v.Snapshot()), id) {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s is still registered %v after it stopped (its TTL is %v)", id, ttl+30*time.Second, ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now(), nil
}

// waitFresh returns when v reaches etcd again, or an error if it does not
// within a generous bound.
func waitFresh(v *registry.View) error {
	for deadline := time.Now().Add(30 * time.Second); v.Stale(); {
		if time.Now().After(deadline) {
			return errors.New("the registry is still stale 30 s after etcd restarted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// losses records instances that left the registry while their process
// lived: here, any that left without being stopped or killed first.
type losses struct {
	done chan struct{}
	lost []string // written by the goroutine, read after done
}

// watchLosses follows v until it closes; c must never leave it.
func watchLosses(v *registry.View) *losses {
	l := &losses{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		seen := false
		for range v.Changes() {
			has := slices.Contains(ids(v.Snapshot()), "c")
			if seen && !has {
				l.lost = append(l.lost, fmt.Sprintf("c at revision %d", v.Snapshot().Rev))
			}
			seen = seen || has
		}
	}()
	return l
}

func (l *losses) wait() { <-l.done }

// proc is one instance running as a child process.
type proc struct {
	cmd     *exec.Cmd
	addr    string
	scanned chan struct{} // closed when its output ends
	once    sync.Once
	waitErr error
}

// startInstance runs this program as instance id and returns once it
// serves and is registered.
func startInstance(ctx context.Context, self string, args []string, id string) (*proc, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), instanceEnv+"="+id)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, scanned: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(p.scanned)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if addr, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- addr
			}
		}
	}()
	select {
	case p.addr = <-ready:
		return p, nil
	case <-p.scanned:
	case <-time.After(30 * time.Second):
	}
	p.kill()
	return nil, fmt.Errorf("instance %s did not start", id)
}

// wait waits for the process to exit, once.
func (p *proc) wait() error {
	p.once.Do(func() {
		<-p.scanned
		p.waitErr = p.cmd.Wait()
	})
	return p.waitErr
}

// signal sends sig to the instance.
func (p *proc) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// exited waits for the instance to exit and returns an error unless it
// exited with status 0.
func (p *proc) exited() error {
	if err := p.wait(); err != nil {
		return fmt.Errorf("instance at %s: %w", p.addr, err)
	}
	return nil
}

// term stops the instance cleanly and waits for it to exit.
func (p *proc) term() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.exited()
}

// kill kills the instance and waits for it to exit.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	p.wait()
}

// instance serves grpc-go's health service as instance id until SIGTERM or
// an interrupt, registered while it serves.
func instance(ctx context.Context, id string, args []string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	env, err := demo.Setup(ctx, "discovery", args, io.Discard)
	if err != nil {
		return err
	}
	defer env.Close()
	cli, err := env.Client()
	if err != nil {
		return err
	}
	s, addr, served, err := serve()
	if err != nil {
		return err
	}
	r, err := registry.Register(ctx, cli, registry.Instance{Service: service, ID: id, Addr: addr}, registry.WithTTL(int(ttl/time.Second)))
	if err != nil {
		s.Stop()
		<-served
		return err
	}
	fmt.Fprintln(out, "ready", addr)
	<-ctx.Done()
	// Leave the registry before refusing calls, so that clients stop
	// sending before the server stops taking.
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = r.Deregister(dctx)
	s.GracefulStop()
	<-served
	return err
}

// serve starts grpc-go's health service on a free port of 127.0.0.1;
// served receives Serve's result once s is stopped.
func serve() (s *grpc.Server, addr string, served <-chan error, err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	s = grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	ch := make(chan error, 1)
	go func() { ch <- s.Serve(lis) }()
	return s, lis.Addr().String(), ch, nil
}

// caller calls the service without pause, counting where calls go.
type caller struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards the fields below
	counts  map[string]int
	calls   int
	failed  int
	lastErr error
	// killed is when an instance was killed: a call it was serving then
	// fails (gRPC does not send a call again once it reached the server),
	// which is the kill's doing, not the registry's. inFlight counts them.
	killed   time.Time
	inFlight int
}

// killing tells the caller that an instance is being killed now.
func (c *caller) killing() {
	c.mu.Lock()
	c.killed = time.Now()
	c.mu.Unlock()
}

// startCaller starts calling through cc until stop.
func startCaller(cc *grpc.ClientConn) *caller {
	ctx, stop := context.WithCancel(context.Background())
	c := &caller{cancel: stop, done: make(chan struct{}), counts: map[string]int{}}
	hc := healthpb.NewHealthClient(cc)
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			var p peer.Peer
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
			cancel()
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.calls++
			switch {
			case err != nil && status.Code(err) == codes.Unavailable && !c.killed.IsZero() && time.Since(c.killed) < time.Second:
				c.inFlight++
			case err != nil:
				c.failed++
				c.lastErr = err
			default:
				c.counts[p.Addr.String()]++
			}
			c.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return c
}

// stop stops calling and waits for the caller. It may be called more than
// once.
func (c *caller) stop() {
	c.cancel()
	<-c.done
}

// spreadOver waits until a round of 60 calls reaches exactly addrs, and
// returns how they were spread.
func (c *caller) spreadOver(addrs []string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		c.counts = map[string]int{}
		start := c.calls
		c.mu.Unlock()
		for {
			time.Sleep(20 * time.Millisecond)
			c.mu.Lock()
			n, counts := c.calls-start, maps.Clone(c.counts)
			c.mu.Unlock()
			if n < 60 {
				continue
			}
			var got []string
			var b strings.Builder
			for _, a := range slices.Sorted(maps.Keys(counts)) {
				got = append(got, a)
				fmt.Fprintf(&b, "%s:%d ", a, counts[a])
			}
			if slices.Equal(got, slices.Sorted(slices.Values(addrs))) {
				return strings.TrimSpace(b.String()), nil
			}
			break
		}
	}
	return "", fmt.Errorf("calls did not settle on %v", addrs)
}

// result returns how many calls were made, failed, and failed because the
// instance serving them was killed, and the last failure's error.
func (c *caller) result() (calls, failed, inFlight int, lastErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.failed, c.inFlight, c.lastErr
}
