package grpcresolver

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// Scheme is the URL scheme of the targets a [Builder] resolves.
const Scheme = "coordkit"

// Target returns the dial target that follows service, for example
// Target("/services/hello") = "coordkit:////services/hello".
func Target(service string) string { return Scheme + ":///" + service }

// Builder builds resolvers that follow services registered with
// [registry.Register] (or etcd's endpoints.Manager). Pass it to
// grpc.WithResolvers. It is safe for concurrent use.
type Builder struct {
	cli  *clientv3.Client
	opts []registry.ViewOption
}

// New returns a Builder whose resolvers follow their service through cli,
// each with its own [registry.View] made with opts. The client is
// borrowed: the caller closes it, after the ClientConns that use it.
func New(cli *clientv3.Client, opts ...registry.ViewOption) *Builder {
	return &Builder{cli: cli, opts: slices.Clone(opts)}
}

// Scheme returns [Scheme].
func (b *Builder) Scheme() string { return Scheme }

// Build starts following the service target names (see the package doc)
// for cc, in a goroutine that the resolver's Close stops and waits for. It
// does no I/O and returns [ErrNoService] if the target names no service.
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.URL.Path
	if service == "" {
		service = target.URL.Opaque
	}
	service = strings.TrimPrefix(service, "/")
	if strings.TrimSuffix(service, "/") == "" {
		return nil, fmt.Errorf("%w: %q", ErrNoService, target.URL.String())
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &resolverImpl{
		service: service,
		view:    registry.Watch(b.cli, service, b.opts...),
		cc:      cc,
		stop:    stop,
		done:    make(chan struct{}),
	}
	go r.run(ctx)
	return r, nil
}

// resolverImpl feeds one ClientConn from one View.
type resolverImpl struct {
	service string
	view    *registry.View
	cc      resolver.ClientConn
	stop    context.CancelFunc
	done    chan struct{} // closed when run returns
}

// entry is what the ClientConn was last given of one instance.
type entry struct {
	addr string
	info Info
}

// run publishes the View's changes until ctx ends or the View does.
func (r *resolverImpl) run(ctx context.Context) {
	defer close(r.done)
	ready := r.view.Ready()
	var last []entry
	published, reported := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ready:
			ready = nil // closed: read below, and never again
		case _, ok := <-r.view.Changes():
			if !ok {
				if err := r.view.Err(); err != nil && ctx.Err() == nil {
					r.cc.ReportError(fmt.Errorf("grpcresolver: service %q: %w", r.service, err))
				}
				return
			}
		}
		select {
		case <-r.view.Ready():
		default:
			// No data at all: say so once per outage, so calls fail rather
			// than wait for a set that cannot be read.
			stale := r.view.Stale()
			if stale && !reported {
				r.cc.ReportError(fmt.Errorf("%w: service %q", ErrNoData, r.service))
			}
			reported = stale
			continue
		}
		cur := serving(r.view.Snapshot())
		if published && slices.Equal(cur, last) {
			continue
		}
		last, published = cur, true
		// An error here is the balancer's verdict on the set (round_robin
		// refuses an empty one); the next change is published anyway.
		_ = r.cc.UpdateState(state(cur))
	}
}

// serving returns the instances that should get new calls, in ID order.
func serving(s registry.Snapshot) []entry {
	out := make([]entry, 0, len(s.Instances))
	for _, in := range s.Instances {
		if in.State == registry.Serving {
			out = append(out, entry{addr: in.Addr, info: newInfo(in)})
		}
	}
	return out
}

// state returns the resolver state for es.
func state(es []entry) resolver.State {
	st := resolver.State{
		Addresses: make([]resolver.Address, 0, len(es)),
		Endpoints: make([]resolver.Endpoint, 0, len(es)),
	}
	for _, e := range es {
		attr := attributes.New(infoKey{}, e.info)
		a := resolver.Address{Addr: e.addr, BalancerAttributes: attr}
		st.Addresses = append(st.Addresses, a)
		st.Endpoints = append(st.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{a}, Attributes: attr})
	}
	return st
}

// ResolveNow does nothing: the View already follows every change, as the
// package doc explains.
func (r *resolverImpl) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops following the service and waits for the goroutine that
// feeds the ClientConn, so that it is not called after Close returns.
func (r *resolverImpl) Close() {
	r.stop()
	<-r.done
	r.view.Close()
}
