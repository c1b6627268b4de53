// Gateway is the API gateway of coordkit's seed design, as a real net/http
// reverse proxy: routes (method, path pattern, target service) are a
// config value that it reloads live, and each service's instances come
// from the registry, used round-robin.
//
//	go run ./examples/gateway [-endpoints URLS]
//
// The demonstration starts backend HTTP services that register themselves
// (one of them a child process), sends requests through the gateway and
// shows routing (fixed beats :param beats wildcard; 404 without a route,
// 502 without an instance), round-robin, failover when the child is killed
// with SIGKILL (it is dropped when its lease's TTL runs out), a new
// instance used as soon as it registers, a draining one no longer used,
// and a live route change. With no -endpoints it starts an embedded etcd.
// It exits non-zero if anything it shows did not hold.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/examples/gateway/gw"
	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	root           = "/examples/gateway"
	servicesPrefix = root + "/services"
	routesName     = root + "/routes"
	ttl            = 2 // seconds: how long a killed instance stays listed
	// runMainEnv makes a test binary run main, so that the demonstration
	// can start its child backend from the test too.
	runMainEnv = "GATEWAY_RUN_MAIN"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "backend" {
		err = runBackend(ctx, os.Args[2:], os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

var routesV1 = `[
  {"method": "GET", "path": "/users/:id",  "service": "users"},
  {"method": "GET", "path": "/users/me",   "service": "account"},
  {"path": "/static/*",                     "service": "assets"},
  {"method": "GET", "path": "/orders/:id", "service": "orders"}
]`

var routesV2 = strings.Replace(routesV1, `"/users/:id",  "service": "users"`, `"/users/:id",  "service": "users-v2"`, 1)

func run(ctx context.Context, args []string, out io.Writer) error {
	env, err := demo.Setup(ctx, "gateway", args, out)
	if err != nil {
		return err
	}
	defer env.Close()
	cli, err := env.Client()
	if err != nil {
		return err
	}
	defer cli.Delete(context.WithoutCancel(ctx), root+"/", clientv3.WithPrefix())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	checked := config.WithValidator(gw.ValidRoutes)
	if _, err := config.Publish(ctx, cli, routesName, []byte(routesV1), checked, config.WithComment("first routes")); err != nil {
		return err
	}
	g, err := gw.NewGateway(ctx, cli, routesName, servicesPrefix)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: g}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()
	c := &caller{env: env, base: "http://" + ln.Addr().String()}
	env.Say("gateway on %s, routes version %d:\n%s\n", c.base, g.RoutesVersion(), routesV1)

	var stops []*backend
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, b := range stops {
			b.stop(sctx)
		}
	}()
	start := func(service, id string) (*backend, error) {
		b, err := startBackend(ctx, cli, servicesPrefix, service, id, ttl)
		if err == nil {
			stops = append(stops, b)
		}
		return b, err
	}
	for _, s := range [][2]string{{"users", "users-1"}, {"account", "account-1"}, {"assets", "assets-1"}, {"users-v2", "users-v2-1"}} {
		if _, err := start(s[0], s[1]); err != nil {
			return err
		}
	}
	child, err := startChild(ctx, env, args, "users", "users-2")
	if err != nil {
		return err
	}
	defer child.kill()
	if err := c.waitInstances(ctx, g, "users", "users-1", "users-2"); err != nil {
		return err
	}

	env.Say("== routing")
	for _, tt := range []struct {
		path     string
		status   int
		instance string // prefix of the instance that must answer
	}{
		{"/users/me", 200, "account-1"},
		{"/users/7", 200, "users-"},
		{"/static/css/site.css", 200, "assets-1"},
		{"/orders/1", 502, ""},
		{"/nowhere", 404, ""},
	} {
		status, from, _ := c.get(ctx, tt.path)
		if status != tt.status || !strings.HasPrefix(from, tt.instance) {
			return fmt.Errorf("GET %s: %d from %q, want %d from %s", tt.path, status, from, tt.status, tt.instance)
		}
	}

	env.Say("\n== round-robin over users-1 and users-2 (a child process)")
	if err := c.spread(ctx, "/users/7", 4, "users-1", "users-2"); err != nil {
		return err
	}

	env.Say("\n== users-2 is killed with SIGKILL: dropped when its %d s lease runs out", ttl)
	killed := time.Now()
	child.kill()
	failed, sent := 0, 0
	for slices.ContainsFunc(g.Instances(ctx, "users"), func(in registry.Instance) bool { return in.ID == "users-2" }) {
		if ctx.Err() != nil {
			return fmt.Errorf("users-2 never dropped: %w", ctx.Err())
		}
		status, _, body := c.quiet(ctx, "/users/7")
		sent++
		if status != 200 {
			if failed == 0 {
				env.Say("  GET /users/7 -> %d %s", status, body)
			}
			failed++
		}
		time.Sleep(50 * time.Millisecond)
	}
	env.Say("  dropped %.1f s after the kill; meanwhile %d of %d requests failed (502), those that went to users-2", time.Since(killed).Seconds(), failed, sent)
	for range 20 {
		if status, from, _ := c.quiet(ctx, "/users/7"); status != 200 || from != "users-1" {
			return fmt.Errorf("after the drop: %d from %q, want 200 from users-1", status, from)
		}
	}
	env.Say("  then 20 of 20 requests answered by users-1")

	env.Say("\n== users-3 registers and takes work at once")
	b3, err := start("users", "users-3")
	if err != nil {
		return err
	}
	if err := c.waitInstances(ctx, g, "users", "users-1", "users-3"); err != nil {
		return err
	}
	if err := c.spread(ctx, "/users/7", 4, "users-1", "users-3"); err != nil {
		return err
	}

	env.Say("\n== users-3 drains before it stops: it gets no new work")
	if err := b3.reg.SetState(ctx, registry.Draining); err != nil {
		return err
	}
	if err := c.waitInstances(ctx, g, "users", "users-1"); err != nil {
		return err
	}
	if err := c.spread(ctx, "/users/7", 3, "users-1"); err != nil {
		return err
	}

	env.Say("\n== a live route change: GET /users/:id now goes to users-v2")
	_, err = config.Publish(ctx, cli, routesName, []byte(`[{"path": "/a/*/b", "service": "x"}]`), checked)
	if !errors.Is(err, config.ErrInvalid) {
		return fmt.Errorf("a bad route table was not refused: %v", err)
	}
	env.Say("  a bad table is refused: %v", err)
	v2, err := config.Publish(ctx, cli, routesName, []byte(routesV2), checked, config.WithComment("users-v2"))
	if err != nil {
		return err
	}
	if err := g.WaitRoutes(ctx, v2); err != nil {
		return err
	}
	env.Say("  routes version %d in use, no restart", g.RoutesVersion())
	if err := c.spread(ctx, "/users/7", 2, "users-v2-1"); err != nil {
		return err
	}
	if status, from, _ := c.get(ctx, "/users/me"); status != 200 || from != "account-1" {
		return fmt.Errorf("GET /users/me after the change: %d from %q", status, from)
	}
	env.Say("\nAll of it held.")
	return nil
}
