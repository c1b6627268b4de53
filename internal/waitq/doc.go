// Package waitq is the revision-ordered waiting that every coordkit
// primitive shares.
//
// A waiter writes its own key under the primitive's prefix, attached to its
// session's lease, in one Txn that also reads what the primitive needs to
// decide ([Waiter.Join]). Every primitive acquires through one sequence,
// [Waiter.Acquire], and supplies only its rule, a [Turn]: [First] in line
// (mutex, rwmutex, election), room under a weighted limit (semaphore, with
// [Waiter.WaitRoom]), a barrier's round. The key's create revision is its place in line and
// its fencing token. To wait, it watches only the one key it is waiting for
// ([Waiter.WaitDelete]), so a release wakes one waiter, not all of them, and
// re-checks the line with a read guarded by its own key ([Waiter.Check]), so
// it can never decide it owns something after its own key is gone.
//
// Watches start in sync with the store: a watch that starts from an old
// revision is served by etcd's catch-up loop, which runs every 100 ms and
// delays etcd's own Mutex's hand-over of a contended lock. WaitDelete
// follows the key with internal/follow, whose watch starts at the current
// revision, and closes the gap between its read and the watch by reading
// again at the revision at which the watch was created
// ([follow.Follower.Started]). Every wait in this package, and the hold's
// monitor of its own key ([Waiter.WaitDeleteFrom]), waits through that one
// follower.
//
// The line ahead of a waiter only shrinks: no key can be created with a
// smaller create revision than one that exists. So "nobody is ahead" at any
// revision after the waiter's Join stays true, and the re-check after a
// deletion may be a serializable read, provided the member that answers has
// applied the deletion and shows the waiter's key ([Waiter.CheckSince]);
// otherwise it is repeated linearizably.
//
// A Txn that writes runs in etcd's single apply loop, where a read that
// copies out the whole line makes a burst of N waiters cost O(N²) and stalls
// every other write and lease renewal. [First] therefore copies at most
// [LineRead] keys while joining, and reads a longer line, and every
// re-check, in read-only requests served outside that loop; a waiter made
// with [Tail] joins a long line through its tail ([TailKeys]), one key
// instead of a read of the line.
//
// The etcd client closes a watch stream when its last watch closes; a
// per-session keeper holds an idle watch so that the session's waits reuse
// one stream instead of opening one each (the session.State that owns every per-session goroutine).
//
// Everything a waiter does stops when its session's lease is lost, judged
// on the local clock by a [lease.Tracker].
package waitq
