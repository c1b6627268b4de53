// Package rwmutex provides a distributed readers-writer lock on etcd: many
// readers at once, or one writer.
//
// # Ownership
//
// A lock is held by a session's lease, not by a goroutine or a process:
// every reader and writer writes its own key under the lock's name, attached
// to the lease of the *concurrency.Session given to [New], so if the process
// dies its hold ends when the lease expires, without anyone's help. Readers'
// keys live under "<name>/read/" and writers' under "<name>/write/", each
// starting with the lease id in hex.
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
// # Loss
//
// A hold ends when it is unlocked, when its lease expires or is revoked,
// when its key is deleted by someone else, when its session is closed, or
// when the client has gone too long without confirming its lease with the
// server. [RWMutex.Done] is closed at that moment and [RWMutex.Err] says
// why. The last case is judged on the local clock, counted from when the
// last successful lease probe was sent, less a margin, so a client cut off
// from etcd knows it has lost the lock before the server can give it to
// someone else.
//
// # What a lease-based lock cannot promise
//
// A holder paused past its lease's TTL can wake up and act as if it still
// held the lock while someone else holds it too. Close that gap with
// fencing:
//
//   - [RWMutex.Token] is the hold key's create revision. Writers' tokens
//     strictly increase from one writer to the next, and every reader's
//     token lies between those of the writers before and after it. Pass it
//     with every write to the protected resource, and have the resource
//     reject a writer's token lower than the highest it has seen.
//   - For data kept in etcd itself, [RWMutex.Txn] runs a transaction that
//     commits only while this hold's key still exists with its create
//     revision. [RWMutex.IsOwner] gives the comparison for transactions you
//     build yourself.
//
// Lock names are key prefixes: do not nest them.
package rwmutex
