// Package coordkit is the home of what every coordkit primitive has in
// common: how a hold is owned and lost, what a cancelled or failed call
// leaves behind, and which of etcd's failures a call rides out. The package
// docs of [github.com/coordkit/coordkit/mutex], rwmutex, semaphore,
// election, queue, barrier and stm link here rather than repeat it. This
// package has no code.
//
// # Holds
//
// A lock, a read or write lock, a semaphore grant, a leadership, a queue
// claim and a double barrier's place are each one key under the
// primitive's name, attached to the lease of the *concurrency.Session the
// primitive was made with. The lease owns it, not a goroutine or a
// process: if the process dies, the key goes when the lease expires,
// without anyone's help. The session is borrowed: its caller creates it,
// may share it among primitives, and closes it.
//
// The key's create revision is the hold's fencing token (Token, and
// LeaderInfo.Token in package election for observers). It strictly increases from
// one holder of a name to the next: pass it with every write to a
// protected resource, and have the resource refuse a token lower than the
// highest it has seen. For data in etcd itself, a primitive's Txn commits
// only while the hold's key exists with that revision, and IsOwner gives
// that comparison for your own transactions. No lease-based primitive can
// stop a holder paused past its TTL (a long GC pause, a stopped VM) from
// acting as if it still held; only fencing can.
//
// A hold ends when its owner releases it, when its lease expires or is
// revoked, when its session is closed, when its key is deleted by someone
// else, or when the client has gone too long without confirming the lease
// with the server. The last is judged on the local clock, from when the
// last successful lease probe was sent, less a margin, so that a client cut
// off from etcd knows it has lost before the server can give the hold to
// someone else. Done is then closed, every context from Context(parent) is
// cancelled with why as its [context.Cause], and Err returns why:
// ErrSessionExpired when the lease is gone, ErrLost when the key was
// deleted or the lease could not be confirmed in time. Each package
// re-exports these two as the same values, so [errors.Is] matches them
// through any package name.
//
// Watching the key for a delete by someone else costs a watch per hold, so
// it starts the first time Done, Context or Err is called, never on
// acquire and release alone. It watches from the key's create revision, so
// a delete made before that first call is still seen, as soon as etcd
// replays it.
//
// # Cleanup
//
// A blocking call (Lock, Acquire, Campaign, Enter) whose context ends, or
// that fails, deletes the key it wrote before it returns: it leaves nothing
// that would make others wait. That delete runs on a detached context
// ([context.WithoutCancel]) bounded by 2 s (CleanupTimeout in
// internal/waitq). If etcd does not answer in time, the session's janitor
// deletes the key, guarded by its create revision, as soon as etcd
// answers, and the lease takes it in any case. A request whose answer
// never came may still be applied later; the janitor deletes such a key
// each time it shows up for 30 s after. A release (Unlock, Release,
// Resign) that fails the same way returns its error, and the janitor
// deletes the key; others wait until then.
//
// # Faults
//
// Every blocking call classifies etcd's errors in one place and paces its
// retries the same way: exponential backoff with jitter from 10 ms up to
// 1 s.
//
// Retried, while the call's context lasts: what etcd answers between
// leaders or without a quorum ("leader changed", "no leader", "request
// timed out"), an unreachable member (gRPC Unavailable), "too many
// requests", and an attempt with no answer within its bound (2 s for the
// first attempt, doubling up to 16 s, so that a request caught by a member
// that cannot answer is sent again through another). For a primitive that
// holds through a session, the session's lease bounds the retries too:
// once it cannot be confirmed in time the call fails with ErrLost, and
// once it is gone, with ErrSessionExpired.
//
// Returned at once: etcd's refusals (permission denied by RBAC, failed
// authentication), which the same user cannot overcome by asking again; a
// closed client; the call's own context ending (an error that satisfies
// errors.Is(err, ctx.Err())); and any other error of etcd's. A write that
// cannot be told apart from its own retry (a queue take, a barrier's Hold
// or Release, a plain Enqueue) is not sent again: its error is returned,
// since it may have been applied. Each package's doc has a table of what
// each of its methods does with each of these.
package coordkit
