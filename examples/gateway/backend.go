package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// backend is one instance of a service: an HTTP server that answers with
// its own name and registers itself while it runs.
type backend struct {
	id  string
	srv *http.Server
	reg *registry.Registration
	end chan error // Serve's result
}

// startBackend serves on a free local port and registers the instance
// under services + "/" + service with a lease of ttl seconds.
func startBackend(ctx context.Context, cli *clientv3.Client, services, service, id string, ttl int) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{id: id, end: make(chan error, 1)}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s answered %s %s\n", id, r.Method, r.URL.Path)
	})}
	go func() { b.end <- b.srv.Serve(ln) }()
	b.reg, err = registry.Register(ctx, cli, registry.Instance{Service: services + "/" + service, ID: id, Addr: ln.Addr().String()}, registry.WithTTL(ttl))
	if err != nil {
		b.srv.Close()
		<-b.end
		return nil, err
	}
	return b, nil
}

// stop deregisters the instance and then stops serving, as a clean
// shutdown should: clients stop choosing it before it goes.
func (b *backend) stop(ctx context.Context) error {
	err := b.reg.Deregister(ctx)
	if cerr := b.srv.Shutdown(ctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if serr := <-b.end; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// runBackend is the "backend" subcommand: one instance in a process of its
// own, which says "ready" once registered and runs until ctx ends or it is
// killed.
func runBackend(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gateway backend", flag.ContinueOnError)
	fs.SetOutput(out)
	service := fs.String("service", "", "the service to register as")
	id := fs.String("id", "", "the instance's ID")
	ttl := fs.Int("ttl", 2, "the registration's TTL in seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *service == "" || *id == "" || *ttl < 1 {
		return errors.New("backend needs -service, -id and a positive -ttl")
	}
	env, err := demo.Setup(ctx, "gateway backend", fs.Args(), out)
	if err != nil {
		return err
	}
	defer env.Close()
	cli, err := env.Client()
	if err != nil {
		return err
	}
	b, err := startBackend(ctx, cli, servicesPrefix, *service, *id, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return b.stop(sctx)
}
