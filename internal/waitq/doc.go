// Package waitq is the revision-ordered waiting that every coordkit
// primitive shares.
//
// A waiter writes its own key under the primitive's prefix, attached to its
// session's lease, in one Txn that also reads what the primitive needs to
// decide ([Waiter.Join]). The key's create revision is its place in line and
// its fencing token. To wait, it watches only the one key it is waiting for
// ([Waiter.WaitDelete]), so a release wakes one waiter, not all of them, and
// re-checks the line with a read guarded by its own key ([Waiter.Check]), so
// it can never decide it owns something after its own key is gone.
//
// Watches start in sync with the store: a watch that starts from an old
// revision is served by etcd's 100 ms catch-up loop, which is why etcd's own
// Mutex hands a contended lock over in tens of milliseconds. WaitDelete
// starts its watch at the current revision and closes the gap between its
// read and the watch by checking the revision at which the watch was
// created.
//
// Everything a waiter does stops when its session's lease is lost, judged
// on the local clock by a [lease.Tracker].
package waitq
