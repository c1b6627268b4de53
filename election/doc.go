// Package election provides leader election on etcd, and a supervisor that
// runs a singleton worker in whichever process leads.
//
// # Ownership
//
// A leadership is held by a session's lease, not by a goroutine or a
// process: every candidate writes its own key under the election's name,
// attached to the lease of the *concurrency.Session given to [New], and the
// key with the lowest create revision leads. If the leader's process dies,
// its lease expires after its TTL and the next candidate leads without
// anyone's help. This is the rule etcd's concurrency.Election and
// "etcdctl elect" follow, and the key starts with the lease id in hex as
// theirs does, so coordkit candidates, concurrency.Election candidates and
// "etcdctl elect" on the same name agree on one leader. Unlike etcd's, two
// *Election on one session are two separate candidates.
//
// # Campaigning
//
// Candidates lead in the order they started campaigning. Each waits only for
// the key just ahead of it, with a watch that is in sync with the store, so
// a Resign hands the leadership to the next candidate within a round trip.
// A Campaign cancelled through its context deletes its key before it
// returns. A Campaign whose lease expires or is revoked while it waits
// returns an error wrapping [ErrSessionExpired] within about a TTL; it never
// reports leadership without its key in place (etcd#11051).
//
// [Election.TryCampaign] leads only if nobody leads or waits, and
// otherwise returns [ErrLeaderExists] at once, leaving no key behind.
//
// A Campaign with no other candidate is one Txn as cheap as a bare
// put-if-absent; after one that met others in line, the handle's next
// Campaign joins behind them at once.
//
// # Loss
//
// A leadership ends when the leader resigns, when its lease expires or is
// revoked, when its key is deleted by someone else, when its session is
// closed, or when the client has gone too long without confirming its lease
// with the server. [Election.Done] is closed at that moment, [Election.Err]
// says why, and every context from [Election.Context] is cancelled with
// that cause. The last case is judged on the local clock,
// counted from when the last successful lease probe was sent, less a
// margin, so a leader cut off from etcd knows it has lost before the server
// can let another candidate lead.
//
// # Watching the leader
//
// [Election.Leader] reads the current leader. [Election.Observe] delivers
// the leader and every change to it, including "nobody leads", and always
// ends up on the latest state, through compactions and reconnects.
//
// # Singleton workers
//
// [Run] is the loop that a replicated service runs so that exactly one
// replica does some work: it creates a session, campaigns, runs the work
// with a context that is cancelled the moment the leadership is lost, waits
// for the work to return, and campaigns again with a new session after a
// pause with exponential backoff and jitter. When its context is cancelled
// (a rolling restart), it stops the work and resigns, so the next replica
// takes over within milliseconds rather than a TTL.
//
// # What a lease-based election cannot promise
//
// No election can stop a leader that is paused (a long GC pause, a stopped
// VM) past its lease's TTL from waking up and acting as leader while its
// successor acts too. Close that gap with fencing:
//
//   - [Election.Token] is the leader key's create revision. It strictly
//     increases from one leader to the next. Pass it with every write to
//     the protected resource, and have the resource reject a token lower
//     than the highest it has seen.
//   - For data kept in etcd itself, [Election.Txn] runs a transaction that
//     commits only while this leader's key still exists with its create
//     revision: a late write from a lost leadership cannot commit.
//     [Election.IsOwner] gives the comparison for your own transactions.
//
// Election names are key prefixes: do not nest them ("jobs" and
// "jobs/nightly"), or the longer one's candidates will take part in the
// shorter one's election.
package election
