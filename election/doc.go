// Package election provides leader election on etcd, and a supervisor that
// runs a singleton worker in whichever process leads.
//
// A leadership is held by a session's lease, not by a goroutine; how it is
// fenced, lost and cleaned up, and which of etcd's faults a call rides
// out, is the same in every coordkit primitive and is written once in
// [github.com/coordkit/coordkit].
//
// Every candidate writes its own key under the election's name, and the
// key with the lowest create revision leads. This is the rule etcd's
// concurrency.Election and "etcdctl elect" follow, and the key starts with
// the lease id in hex as theirs does, so coordkit candidates,
// concurrency.Election candidates and "etcdctl elect" on the same name
// agree on one leader. Unlike etcd's, two *Election on one session are two
// separate candidates.
//
// # Campaigning
//
// Candidates lead in the order they started campaigning. Each waits only for
// the key just ahead of it, with a watch that is in sync with the store, so
// a Resign hands the leadership to the next candidate within a round trip.
// A Campaign never reports leadership without its key in place
// (etcd#11051).
//
// [Election.TryCampaign] leads only if nobody leads or waits, and
// otherwise returns [ErrLeaderExists] at once, leaving no key behind.
//
// A Campaign with no other candidate is one Txn as cheap as a bare
// put-if-absent; after one that met others in line, the handle's next
// Campaign joins behind them at once.
//
// # Watching the leader
//
// [Election.Leader] reads the current leader. [Election.Observe] delivers
// the leader and every change to it, including "nobody leads", and always
// ends up on the latest state, through compactions and reconnects.
// [Election.Watch] does the same and says, through [Watcher.Err], why it
// stopped.
//
// # Singleton workers
//
// [Run] is the loop that a replicated service runs so that exactly one
// replica does some work: it creates a session, campaigns, runs the work
// with a context that is cancelled the moment the leadership is lost, waits
// for the work to return, and campaigns again with a new session after a
// pause with exponential backoff and jitter. When its context is cancelled
// (a rolling restart), it stops the work and resigns, so the next replica
// takes over at once rather than after a TTL.
//
// # Faults
//
// What each method does with each class of failure ([github.com/coordkit/coordkit]
// says which errors fall in which class):
//
//	method          quorum lost, etcd        client closed       refused (RBAC)    ctx ends
//	                unreachable
//	Campaign        retried; ErrLost once    an error            returned at once  ctx's error; key deleted
//	                the lease cannot be
//	                confirmed
//	TryCampaign     as Campaign              an error            returned at once  ctx's error; key deleted
//	Resign          returned; the janitor    an error            returned          returned; the janitor
//	                deletes the key                                                deletes the key
//	Proclaim        returned                 an error            returned          ctx's error
//	Leader          etcd client's own retry  an error            returned          ctx's error
//	                of a read
//	Observe, Watch  re-read and re-watched   channel closed;     channel closed;   channel closed;
//	                                         Err: ErrClosed      Err: the refusal  Err: ctx's error
//	Run             campaigns again after a  ErrClosed           returned at once  work stopped, resigns,
//	                pause                                                          ctx's error
//
// # Fencing
//
// [Election.Token] is the leadership's fencing token, [Election.Txn]
// commits only while the leadership lasts, and [Election.IsOwner] gives
// that comparison for your own transactions.
//
// Election names are key prefixes: do not nest them ("jobs" and
// "jobs/nightly"), or the longer one's candidates will take part in the
// shorter one's election.
package election
