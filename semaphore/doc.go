// Package semaphore provides a distributed, weighted, first-come
// first-served counting semaphore on etcd.
//
// Permits are held by a session's lease, not by a goroutine; how a grant
// is fenced, lost and cleaned up, and which of etcd's faults a call rides
// out, is the same in every coordkit primitive and is written once in
// [github.com/coordkit/coordkit]. Each participant writes one key under
// the semaphore's name, starting with the lease id in hex as etcd's own
// keys do; its value records the weight asked for and the limit, as JSON
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
// key or lease is gone is never granted anything.
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
// # Faults
//
// What each method does with each class of failure ([github.com/coordkit/coordkit]
// says which errors fall in which class):
//
//	method        quorum lost, etcd        client closed   refused (RBAC)    ctx ends
//	              unreachable
//	Acquire       retried; ErrLost once    an error        returned at once  ctx's error; key deleted
//	              the lease cannot be
//	              confirmed
//	TryAcquire    as Acquire               an error        returned at once  ctx's error; key deleted
//	Release       returned; the janitor    an error        returned          returned; the janitor
//	              deletes the key                                            deletes the key
//
// # Fencing
//
// [Semaphore.Token] identifies the grant to outside resources,
// [Semaphore.Txn] commits only while the grant lasts, and
// [Semaphore.IsOwner] gives that comparison for your own transactions.
//
// Keys under the name that are not a participant's (an "etcdctl lock" on
// the same name, say) count as holding every permit. Do not nest names
// ("jobs" and "jobs/nightly").
package semaphore
