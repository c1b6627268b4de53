// Package mutex provides a distributed mutual-exclusion lock on etcd.
//
// # Ownership
//
// A lock is held by a session's lease, not by a goroutine or a process: the
// holder's key is attached to the lease of the *concurrency.Session given to
// [New], so if the process dies the lock is released when the lease expires,
// without anyone's help. Every waiter writes its own key under the lock's
// name; the key with the lowest create revision holds the lock. This is the
// rule etcd's concurrency.Mutex and "etcdctl lock" follow, and the key
// starts with the lease id in hex as theirs do, so a coordkit Mutex, an etcd
// concurrency.Mutex and "etcdctl lock" on the same name exclude one another.
// Unlike etcd's, two *Mutex on one session are two separate places in line
// and exclude each other (etcd#10756).
//
// # Fairness and waiting
//
// Waiters are served first come, first served, in the order of their keys'
// create revisions. Each waiter watches only the key just ahead of it, so a
// release wakes exactly one waiter, and watches start in sync with the store,
// so the lock passes to the next waiter within a millisecond or two rather
// than the ~100 ms of a lagging watch. A Lock cancelled through its context
// deletes its key before it returns: it leaves nothing behind that would
// block others.
//
// # Cost
//
// An uncontended Lock is one Txn that writes the key only if the line is
// empty, as cheap as a bare put-if-absent; Unlock is one Delete. After a
// Lock that met others in line, the next Lock of the same *Mutex joins
// behind them at once (one Txn that writes its key and reads the line), so
// contended locks pay no failed attempt. A waiter's re-check after the key
// ahead is deleted is a serializable read that must reflect the deletion,
// so it skips the linearizable read's round of consensus. The waits of a
// session share one watch stream, kept open for the session's life.
//
// # Loss
//
// A hold ends when it is unlocked, when its lease expires or is revoked, when
// its key is deleted by someone else, when its session is closed, or when the
// client has gone too long without confirming its lease with the server.
// [Mutex.Done] is closed at that moment, [Mutex.Err] says why, and every
// context from [Mutex.Context] is cancelled with that cause. The last
// case is judged on the local clock, counted from when the last successful
// lease probe was sent, less a margin, so a client cut off from etcd knows it
// has lost the lock before the server can give it to someone else.
//
// # Faults
//
// Lock, TryLock and the wait behind others ride out what etcd answers while
// it elects a leader or lacks a quorum ("request timed out", "leader
// changed", an unreachable member): they try again, backing off, for as
// long as their context lasts and the session's lease can be confirmed, and
// fail with [ErrLost] once it cannot. Each of their requests gets 2 s to be
// answered, then twice as long on each new try, so that a request caught
// by a member that cannot answer (a paused leader) is sent again through
// another member rather than wait for etcd's 7 s request timeout. A
// request that failed so may still be applied later; the session deletes
// any key it leaves behind.
//
// # What a lease-based lock cannot promise
//
// No lock service can stop a holder that is paused (a long GC pause, a
// stopped VM, a slow disk) past its lease's TTL from waking up and acting as
// if it still held the lock while a new holder acts too. Close that gap with
// fencing:
//
//   - [Mutex.Token] is the hold key's create revision. It strictly increases
//     from one holder of a name to the next. Pass it with every write to the
//     protected resource, and have the resource reject a token lower than the
//     highest it has seen.
//   - For data kept in etcd itself, [Mutex.Txn] runs a transaction that
//     commits only while this hold's key still exists with its create
//     revision, which is exact: a late write from a lost hold cannot commit.
//     [Mutex.IsOwner] gives the comparison for transactions you build
//     yourself.
//
// Lock names are key prefixes: do not nest them ("jobs" and "jobs/nightly"),
// or the shorter one's waiters will wait for the longer one's too.
package mutex
