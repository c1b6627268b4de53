package gw

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Gateway is a reverse proxy that routes each request by its method and
// path to a service (the routes are a config value, reloaded live) and
// forwards it to one of the service's live, serving instances (found in
// the registry), round-robin. It is safe for concurrent use.
type Gateway struct {
	cli      *clientv3.Client
	services string // registry prefix of the services
	routes   *config.Watcher[*Table]
	proxy    *httputil.ReverseProxy
	tr       *http.Transport

	mu       sync.Mutex // guards backends
	backends map[string]*backends
}

// backends is one service's View and its round-robin counter.
type backends struct {
	view *registry.View
	next atomic.Uint64
}

// instanceKey carries the chosen instance from ServeHTTP to the proxy.
type instanceKey struct{}

// NewGateway watches the routes published under routesName and finds the
// instances of service s under services + "/" + s. Close it when done.
func NewGateway(ctx context.Context, cli *clientv3.Client, routesName, services string) (*Gateway, error) {
	routes, err := config.Watch(ctx, cli, routesName, ParseTable, config.WithValidator(ValidRoutes))
	if err != nil {
		return nil, err
	}
	// net/http's default keeps 2 idle connections per backend: with more
	// requests in flight than that, each extra one would open a connection.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	g := &Gateway{cli: cli, services: services, routes: routes, tr: tr, backends: map[string]*backends{}}
	g.proxy = &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			in := pr.In.Context().Value(instanceKey{}).(registry.Instance)
			pr.SetURL(&url.URL{Scheme: "http", Host: in.Addr})
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			in := resp.Request.Context().Value(instanceKey{}).(registry.Instance)
			resp.Header.Set("X-Gateway-Instance", in.ID)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			in := r.Context().Value(instanceKey{}).(registry.Instance)
			http.Error(w, fmt.Sprintf("gateway: instance %s of service %s at %s failed: %v", in.ID, in.Service, in.Addr, err), http.StatusBadGateway)
		},
	}
	return g, nil
}

// ValidRoutes is the check both the publisher and the gateway run: the
// routes parse into a [Table].
func ValidRoutes(data []byte) error { _, err := ParseTable(data); return err }

// RoutesVersion returns the version of the routes in use.
func (g *Gateway) RoutesVersion() int64 { return g.routes.Version() }

// WaitRoutes blocks until routes version v or a later one is in use.
func (g *Gateway) WaitRoutes(ctx context.Context, v int64) error { return g.routes.WaitFor(ctx, v) }

// ServeHTTP routes and forwards one request: 404 without a route, 502
// when the service has no serving instance or the instance fails.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	table := g.routes.Load()
	if table == nil {
		http.Error(w, "gateway: no routes published yet", http.StatusNotFound)
		return
	}
	route, _, ok := table.Match(r.Method, r.URL.Path)
	if !ok {
		http.Error(w, fmt.Sprintf("gateway: no route for %s %s", r.Method, r.URL.Path), http.StatusNotFound)
		return
	}
	in, ok := g.pick(r.Context(), route.Service)
	if !ok {
		http.Error(w, fmt.Sprintf("gateway: no live instance of service %s", route.Service), http.StatusBadGateway)
		return
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), instanceKey{}, in)))
}

// pick returns the next serving instance of service, round-robin.
func (g *Gateway) pick(ctx context.Context, service string) (registry.Instance, bool) {
	live := g.Instances(ctx, service)
	if len(live) == 0 {
		return registry.Instance{}, false
	}
	b := g.backendsOf(service)
	return live[(b.next.Add(1)-1)%uint64(len(live))], true
}

// Instances returns the serving instances of service the gateway knows,
// waiting (as long as ctx allows) for its first read of a service it had
// not been asked for yet.
func (g *Gateway) Instances(ctx context.Context, service string) []registry.Instance {
	b := g.backendsOf(service)
	select {
	case <-b.view.Ready():
	case <-ctx.Done():
		return nil
	}
	var live []registry.Instance
	for _, in := range b.view.Snapshot().Instances {
		if in.State == registry.Serving {
			live = append(live, in)
		}
	}
	return live
}

// backendsOf returns service's backends, starting its View on first use.
func (g *Gateway) backendsOf(service string) *backends {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.backends[service]
	if !ok {
		b = &backends{view: registry.Watch(g.cli, g.services+"/"+service)}
		g.backends[service] = b
	}
	return b
}

// Close stops watching the routes and the services, and closes the idle
// connections to the backends.
func (g *Gateway) Close() {
	g.tr.CloseIdleConnections()
	g.routes.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.backends {
		b.view.Close()
	}
}
