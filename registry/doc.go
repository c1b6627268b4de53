// Package registry provides service registration and discovery on etcd, so
// that a live instance never silently vanishes from its clients.
//
// [Register] stores an [Instance] under Service + "/" + ID on a lease kept
// alive, and keeps it there until [Registration.Deregister]: after its
// lease is lost (revoked, or expired during an outage longer than the TTL)
// it grants a new one and stores the key again, and it puts the key back
// when someone else deletes it, pacing its attempts with a jittered backoff
// and never giving up. [Registration.Status] tells the caller whether the
// key is stored now and the last error met; [Registration.SetState] marks
// an instance [Draining] so clients stop sending it work before it exits.
//
// [Watch] returns a [View] of a service's instances: a [Snapshot] stamped
// with etcd's revision, a coalesced change notification, Ready and Stale.
// While etcd cannot be reached a View keeps serving the last set it read
// and says it is stale; a read that fails never empties it.
//
// The stored value is a JSON superset of etcd's client/v3/naming/endpoints
// value ({"Op":0,"Addr":...,"Metadata":...} plus Weight and State), so
// etcd's endpoints.Manager and its etcd:/// gRPC resolver see the
// instances registered here, and a View sees theirs.
//
// How soon a registration's keep-alive resumes after etcd comes back is
// up to the client's gRPC reconnect backoff, which clientv3 leaves at
// gRPC's default (growing to 120 s): after an outage of 15 s it may wait
// another 10 s or more, and a longer outage can outlast the TTL though
// etcd is back. Build the client with
// [github.com/coordkit/coordkit/etcdclient.Config.New], or give your
// clientv3.Config the DialOptions that its ClientConfig returns, which cap
// that backoff at 3 s.
//
// Two registrations of one key fight over it: an ID must be unique to one
// process. A registration on a borrowed session ([WithSession]) lives as
// long as that session.
package registry
