// Package grpcresolver is a grpc-go name resolver over a [registry.View]:
// a ClientConn dialled to [Target](service) with the [Builder] from [New]
// balances over the service's registered instances, and follows them as
// they come, change and go.
//
// What the resolver gives the ClientConn:
//   - every change of the set of serving instances, the first included,
//     and nothing when a change leaves that set as it was (a stale flip, a
//     draining instance's metadata), so sub-connections are not churned;
//   - an error (ClientConn.ReportError) while it has no data at all: the
//     View has not read the set yet and etcd cannot be reached;
//   - during an outage after the first read, the last set it read: a
//     failed read never replaces a good list with an empty one;
//   - only [registry.Serving] instances: a [registry.Draining] one is
//     dropped at once, so it gets no new calls while it finishes its work;
//   - each instance's ID, weight and metadata as a comparable [Info] in
//     the address's BalancerAttributes and the endpoint's Attributes,
//     read back with [InfoOf]. BalancerAttributes do not take part in a
//     sub-connection's identity, so a metadata change does not reconnect.
//
// ResolveNow is a no-op. gRPC calls it when a sub-connection fails, to ask
// for fresh addresses; the View already pushes every change as etcd
// commits it and reads the whole set again whenever its watch cannot be
// resumed, so a relist would find nothing new, and while etcd cannot be
// reached it would fail too. Relisting on ResolveNow would instead turn
// one instance's crash into a read from every client for every failing
// sub-connection: the reconnect storm this package exists to avoid.
//
// The target names a service as etcd's own resolver does
// (go.etcd.io/etcd/client/v3/naming/resolver): "coordkit:///" followed by
// the service, so "coordkit:///services/hello" follows the service
// "services/hello" and "coordkit:////services/hello" the service
// "/services/hello". [Target] writes it.
package grpcresolver
