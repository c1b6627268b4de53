// Package demo is what the example programs share: an etcd to run against
// (the one given with -endpoints or $ETCDCTL_ENDPOINTS, with etcdctl's TLS
// and credential flags, or an embedded one) and clients of it.
package demo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Env is an etcd to run against, and the clients made of it.
type Env struct {
	Endpoints []string
	Out       io.Writer
	// Config builds the clients; its Endpoints are Endpoints.
	Config etcdclient.Config

	srv     *etcdtest.Cluster
	mu      sync.Mutex // guards clients
	clients []*clientv3.Client
	sayMu   sync.Mutex // serialises Say, which workers call concurrently
}

// Setup parses the example's flags (etcdctl's: -endpoints, -cacert,
// -user, ...; $ETCDCTL_* too) and returns its etcd: the one given, or an
// embedded single-member etcd when no endpoint is. Close it when done.
func Setup(ctx context.Context, name string, args []string, out io.Writer) (*Env, error) {
	cfg := etcdclient.Default()
	cfg.Endpoints = nil // none given: start an embedded etcd
	if err := cfg.LoadEnv("ETCDCTL"); err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	cfg.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	e := &Env{Out: out, Config: cfg, Endpoints: cfg.Endpoints}
	if len(cfg.Endpoints) > 0 {
		return e, nil
	}
	srv, err := etcdtest.Start(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	e.Config = etcdclient.Default()
	e.srv, e.Endpoints, e.Config.Endpoints = srv, srv.Endpoints(), srv.Endpoints()
	fmt.Fprintf(out, "(started an embedded etcd at %s; pass -endpoints to use your own)\n\n", e.Endpoints[0])
	return e, nil
}

// Client returns a new client; each simulated host should have its own.
func (e *Env) Client() (*clientv3.Client, error) {
	cli, err := e.Config.New(context.Background())
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clients = append(e.clients, cli)
	e.mu.Unlock()
	return cli, nil
}

// Embedded returns the embedded etcd, so that an example can do to it what
// it must not do to someone's own (stop, restart, compact); nil when the
// example runs against -endpoints.
func (e *Env) Embedded() *etcdtest.Cluster { return e.srv }

// Close closes every client and stops the embedded etcd, if any.
func (e *Env) Close() {
	e.mu.Lock()
	for _, c := range e.clients {
		c.Close()
	}
	e.clients = nil
	e.mu.Unlock()
	if e.srv != nil {
		e.srv.Close()
	}
}

// Say prints one line of the story. It is safe for concurrent use.
func (e *Env) Say(format string, args ...any) {
	e.sayMu.Lock()
	defer e.sayMu.Unlock()
	fmt.Fprintf(e.Out, format+"\n", args...)
}
