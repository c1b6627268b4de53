// Package stm provides transactions over many etcd keys: software
// transactional memory in the manner of etcd's concurrency.NewSTM, with
// retries that back off, range reads, and a function that may fail or panic
// without harm.
//
// [Run] calls a function with a [Tx]. The function reads keys, ranges and
// revisions through it and buffers writes; Run then commits the writes in
// one etcd Txn whose compares fail if what the function read has changed
// since. On such a conflict Run waits (exponential backoff with jitter) and
// runs the function again on fresh data, until it commits or the context
// ends:
//
//	_, err := stm.Run(ctx, cli, func(tx stm.Tx) error {
//		v, err := tx.Get("/counter")
//		if err != nil {
//			return err
//		}
//		n, _ := strconv.Atoi(v)
//		tx.Put("/counter", strconv.Itoa(n+1))
//		return nil
//	})
//
// # Isolation
//
// The levels are etcd's, with the same meanings ([WithIsolation]). Every
// level reads each key at most once per attempt (a second Get returns the
// first value), and every level sees the transaction's own writes.
//
//	level                   reads of one attempt          commit fails if            allows
//	SerializableSnapshot    one revision: the first       a key or range read, or a  nothing: transactions are
//	(default)               read's, linearizable          key written, changed       serializable, and a blind
//	                                                      after that revision        write loses to a newer one
//	Serializable            one revision: the first       a key or range read        a blind write (a Put of a key
//	                        read's, linearizable          changed                    not read) overwrites a newer
//	                                                                                 write it never saw
//	RepeatableReads         each key at the newest        a key or range read        read skew inside an attempt:
//	                        revision when first read      changed                    the function may see a state
//	                        (serializable reads)                                     that never existed; such an
//	                                                                                 attempt does not commit
//	ReadCommitted           each key at the newest        never                      lost updates, write skew,
//	                        revision when first read                                 read skew: writes are applied
//	                        (serializable reads)                                     as they are
//
// "Serializable reads" are etcd's: served by the member the client talks
// to, possibly behind the leader. Under RepeatableReads the commit's checks
// make up for it; under ReadCommitted nothing does.
//
// A blind write is checked under SerializableSnapshot only if the attempt
// read something: an attempt that only writes has no revision to check
// against, as in etcd.
//
// A range read ([Tx.Range]) is checked as a whole: the commit fails if a key
// was added to the range, or a key it returned was changed or deleted. With
// a limit, only the part of the range up to the last key returned counts.
//
// A transaction that writes nothing is not sent to etcd under the snapshot
// levels (its reads already came from one revision) nor under
// ReadCommitted; under RepeatableReads its reads are checked in a read-only
// Txn.
//
// # Retries and errors
//
// Conflicts are retried after an exponential backoff with jitter
// ([WithBackoff], the same shape as election's). The next attempt reads
// everything the failed one read in its first round trip, so a retry costs
// two round trips however many keys the function reads one by one. Waiting
// lets the transaction that won finish rather than collide again, so
// contended transactions take fewer attempts than etcd's STM, which
// retries at once (go run ./cmd/coordbench prints both). The price is a
// longer tail: a transaction that keeps losing waits longer each time,
// while new ones go first.
//
// The function's own error ends Run and is returned as is; so is a panic,
// as a [*PanicError]. Nothing is committed in those cases. See [Run] for
// the whole list, including [ErrUncertain] for a commit whose fate is
// unknown.
//
// Keep the function free of effects outside the Tx: it may run several
// times, and an attempt that does not commit may have seen data that was
// never committed together (under RepeatableReads and ReadCommitted) or
// that has since changed.
//
// # Faults
//
// etcd's transient failures are retried as in every coordkit call, and
// its other errors returned, as [github.com/coordkit/coordkit] says:
//
//	method  quorum lost, etcd          client closed  refused (RBAC)  ctx ends
//	        unreachable
//	Run     reads retried; a commit    returned       returned        ctx's error; nothing
//	        whose fate is unknown is                                  committed, unless
//	        sent again as is, never                                   ErrUncertain
//	        re-run through fn
//
// # Cost
//
// A transaction that reads k keys one after another and commits costs k+1
// round trips; [Tx.GetMany] and [WithPrefetch] read many keys in one. etcd
// limits the operations in one Txn (--max-txn-ops, 128 by default), and
// Run returns its error at once when a transaction exceeds it: a GetMany
// counts one per key, a commit one compare per key read, key returned by a
// range, range read and, under SerializableSnapshot, key written.
//
// [Result] reports attempts, conflicts and the commit revision of one call;
// [Stats] adds them up over many, for metrics.
package stm
