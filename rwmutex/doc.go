// Package rwmutex provides a distributed readers-writer lock on etcd: many
// readers at once, or one writer.
//
// A lock is held by a session's lease, not by a goroutine; how a hold is
// fenced, lost and cleaned up, and which of etcd's faults a call rides
// out, is the same in every coordkit primitive and is written once in
// [github.com/coordkit/coordkit]. Readers' keys live under "<name>/read/"
// and writers' under "<name>/write/", each starting with the lease id in
// hex.
//
// # Fairness and waiting
//
// Readers and writers join one line, ordered by their keys' create
// revisions. A reader holds once no writer is ahead of it; a writer holds
// once nobody is ahead of it. So consecutive readers hold together, a
// writer waits for the readers ahead of it to finish, and readers that
// arrive after a waiting writer queue behind it rather than overtake it:
// writers are never starved. Each waiter watches one key, the nearest one
// it must wait for (the nearest writer ahead, for a reader; the nearest key
// of any kind, for a writer), re-reads the line when that key goes, with a
// read guarded by its own key, so a waiter whose key or lease is gone never
// takes the lock. A lock call cancelled through its context deletes its key
// before it returns.
//
// # Cost
//
// A read lock with no writer in line, and a write lock with nobody in line,
// is one Txn as cheap as a bare put-if-absent; after a lock call that met
// others in line, the handle's next one in that mode joins behind them at
// once.
//
// # Interop with etcd's recipe
//
// The key layout and the rule are those of etcd's
// client/v3/experimental/recipes RWMutex ("<name>/read/…", "<name>/write/…",
// lowest revision first), so a coordkit RWMutex and a recipe RWMutex on the
// same name exclude each other as their rules say. Prefer this package: the
// recipe's waiter can take the write lock after its own lease has expired
// (etcd#16221), ignores contexts, and watches from an old revision.
//
// # Faults
//
// What each method does with each class of failure ([github.com/coordkit/coordkit]
// says which errors fall in which class):
//
//	method            quorum lost, etcd        client closed   refused (RBAC)    ctx ends
//	                  unreachable
//	Lock, RLock       retried; ErrLost once    an error        returned at once  ctx's error; key deleted
//	                  the lease cannot be
//	                  confirmed
//	TryLock, TryRLock as Lock                  an error        returned at once  ctx's error; key deleted
//	Unlock, RUnlock   returned; the janitor    an error        returned          returned; the janitor
//	                  deletes the key                                            deletes the key
//
// # Fencing
//
// [RWMutex.Token] is the hold's fencing token: writers' tokens strictly
// increase from one writer to the next, and every reader's lies between
// those of the writers before and after it, so a resource should reject a
// writer's token lower than the highest it has seen. [RWMutex.Txn] commits
// only while the hold lasts, and [RWMutex.IsOwner] gives that comparison
// for your own transactions.
//
// Lock names are key prefixes: do not nest them.
package rwmutex
