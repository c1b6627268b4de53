// Package mutex provides a distributed mutual-exclusion lock on etcd.
//
// A lock is held by a session's lease, not by a goroutine; how a hold is
// fenced, lost and cleaned up, and which of etcd's faults a call rides
// out, is the same in every coordkit primitive and is written once in
// [github.com/coordkit/coordkit].
//
// # Keys and interop
//
// Every waiter writes its own key under the lock's name; the key with the
// lowest create revision holds the lock. This is the rule etcd's
// concurrency.Mutex and "etcdctl lock" follow, and the key starts with the
// lease id in hex as theirs do, so a coordkit Mutex, an etcd
// concurrency.Mutex and "etcdctl lock" on the same name exclude one another.
// Unlike etcd's, two *Mutex on one session are two separate places in line
// and exclude each other (etcd#10756).
//
// A line longer than 64 keys also has a tail: one key, "tail.0" or
// "tail.1" under the name, on the lease of the newest waiter, whose value
// is that waiter's key. A waiter joining a long line replaces it in the Txn
// that writes its own key and so learns whom to wait for from one key,
// where a read of the line would cost etcd O(N) for each of N waiters of a
// burst. The slot has its waiter's create revision and goes with it, so
// etcd's Mutex, which counts it as one more waiter, never waits on it
// longer than on that waiter. Deleting a waiter's key by hand ("etcdctl
// del") can leave its slot behind, where it holds up etcd's Mutex (not
// coordkit's) until the next coordkit waiter joins or the slot's session
// ends; "lockctl release" does not list it as a hold.
//
// # Fairness and cost
//
// Waiters are served first come, first served, in the order of their keys'
// create revisions. Each waiter watches only the key just ahead of it, so a
// release wakes exactly one waiter, and its watch starts in sync with the
// store, so it does not wait for etcd's catch-up of a lagging watch.
//
// An uncontended Lock is one Txn, which writes the key and reads at most
// 64 keys of the line; Unlock is one Delete. A contended Lock adds one read
// of the line after each deletion it waits for: in a line of thousands,
// that read is what a handoff costs most (see the README's figures).
//
// # Faults
//
// What each method does with each class of failure ([github.com/coordkit/coordkit]
// says which errors fall in which class):
//
//	method         quorum lost, etcd        client closed       refused (RBAC)    ctx ends
//	               unreachable
//	Lock           retried; ErrLost once    ErrSessionExpired   returned at once  ctx's error; key deleted
//	               the lease cannot be
//	               confirmed
//	TryLock        as Lock                  an error            returned at once  ctx's error; key deleted
//	Unlock         returned; the janitor    an error            returned          returned; the janitor
//	               deletes the key                                                deletes the key
//
// # Fencing
//
// [Mutex.Token] is the hold's fencing token, [Mutex.Txn] commits only while
// the hold lasts, and [Mutex.IsOwner] gives that comparison for your own
// transactions.
//
// Lock names are key prefixes: do not nest them ("jobs" and "jobs/nightly"),
// or the shorter one's waiters will wait for the longer one's too.
package mutex
