// Package semaphore provides a distributed, weighted, first-come
// first-served counting semaphore on etcd.
//
// # Ownership
//
// Permits are held by a session's lease, not by a goroutine or a process:
// each participant writes one key under the semaphore's name, attached to
// the lease of the *concurrency.Session given to [New], so if the process
// dies its permits come back when the lease expires, without anyone's help.
// The key starts with the lease id in hex, as etcd's own keys do, and its
// value records the weight asked for and the limit, as JSON
// ({"weight":2,"limit":5,"value":"..."}), so operators can see who holds
// what.
//
// # Fairness and waiting
//
// A participant's place in line is its key's create revision. A request of
// n permits is granted once the weights of every key ahead of it, held or
// still waiting, plus n, fit in the limit. That is the rule of
// golang.org/x/sync/semaphore: first come, first served, so a large request
// at the head of the line makes the small ones behind it wait rather than
// being starved by them. Weights held at once never exceed the limit.
//
// A waiter reads the line once, in the transaction that writes its key, and
// then keeps the sum ahead of it locally: one watch on the name subtracts
// each release as it happens, with no round trip per release. Once the sum
// fits it confirms with one read guarded by its own key, so a waiter whose
// key or lease is gone is never granted anything. An Acquire cancelled
// through its context deletes its key before it returns.
//
// # The limit
//
// Every participant's key carries the limit it was opened with, and a
// request checks the keys ahead of it when it joins. If any differs, the
// request fails with [ErrLimitMismatch] and is not admitted: participants
// that disagree on the limit get an error, never a silent over-admission.
// The limit lives as long as someone holds or waits: there is nothing to
// create first or clean up after.
//
// To change a limit, stop using the old one (Release everywhere, or let the
// sessions end) and open the semaphore with the new limit. While any holder
// or waiter with the old limit remains, requests with the new one fail with
// ErrLimitMismatch; retry them after a pause, or move to a new name (for
// example "jobs/v2") to switch at once.
//
// # Loss
//
// A grant ends when it is released, when its lease expires or is revoked,
// when its key is deleted by someone else, when its session is closed, or
// when the client has gone too long without confirming its lease with the
// server. [Semaphore.Done] is closed at that moment and [Semaphore.Err]
// says why. The last case is judged on the local clock, counted from when
// the last successful lease probe was sent, less a margin, so a client cut
// off from etcd knows it has lost its permits before the server can grant
// them to someone else.
//
// # What a lease-based semaphore cannot promise
//
// A holder paused past its lease's TTL (a long GC pause, a stopped VM) can
// wake up and act as if it still held its permits while others hold them
// too. For data kept in etcd, [Semaphore.Txn] commits only while the grant's
// key still exists with its create revision; [Semaphore.IsOwner] gives that
// comparison for your own transactions, and [Semaphore.Token] (the key's
// create revision) identifies the grant to outside resources.
//
// Keys under the name that are not a participant's (an "etcdctl lock" on
// the same name, say) count as holding every permit. Do not nest names
// ("jobs" and "jobs/nightly").
package semaphore
