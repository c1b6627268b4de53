// Package lease tells every hold on a session when the session's lease may
// have expired on the server, on the client's own clock.
//
// concurrency.Session consumes its keep-alive responses itself, so a holder
// cannot see when the lease was last renewed. A [Tracker] probes the lease
// with TimeToLive instead: the server computed the remaining TTL r after the
// probe left, so "send time + r − margin" is a local deadline the server
// cannot beat. Past it, with no newer successful probe, the lease is treated
// as lost. A client cut off from etcd therefore learns of the loss by itself,
// before anyone else could take over what it held. A leader change only makes
// the server's expiry later, never earlier, so the deadline stays safe.
//
// One tracker serves every hold on a session (the session's state in
// internal/session owns it), so a process with many locks on one session
// sends one probe per cadence, not one per lock.
package lease
