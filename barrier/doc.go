// Package barrier provides barriers on etcd: a single barrier that holds
// waiters back until it is released, and a double barrier that lets a
// group of participants start and finish a step together.
//
// # Barrier
//
// A [Barrier] is one key. [Barrier.Hold] writes it, [Barrier.Release]
// deletes it, and [Barrier.Wait] returns once it has seen the key absent or
// deleted. Wait never mistakes a broken watch (compaction, leader loss, a
// closed channel) for a release: it re-establishes the watch from where it
// stopped, or reads the key again if that history was compacted. The key is
// not on a lease unless [WithSession] says so: by default a barrier whose
// holder dies stays held until someone releases it.
//
// # DoubleBarrier
//
// A [DoubleBarrier] is for count participants, each with its own handle
// and a key on its own session's lease. [DoubleBarrier.Enter] returns once
// count participants have entered; [DoubleBarrier.Leave] returns once every
// participant let in with it has left. The two together make rounds: a
// participant that enters while a full round is still inside waits for it
// to leave and counts towards the next.
//
// Participants are let in by order of arrival (create revision of their
// keys). When count are present, one of them writes a ready marker holding
// the create revision of the last one let in, so that every participant,
// however late it looks, knows whether it belongs to the round. Waiting
// participants follow the barrier through one watch each, started in sync
// with the store, and keep their count of participants from the watch's
// events, with no round trip per arrival.
//
// What others see when a participant crashes (its lease expires, taking its
// key with it):
//   - before the round was full: it no longer counts. The others keep
//     waiting in Enter until another participant takes its place, or their
//     contexts end. Enter may never complete if the crashed participant was
//     needed.
//   - after it was let in: it has, in effect, left. Leave completes for the
//     others without it.
//
// A participant's key is on its session's lease, as every coordkit hold
// is: how it is lost and cleaned up (a cancelled Enter leaves nothing that
// others would count), and which of etcd's faults a call rides out, is
// written once in [github.com/coordkit/coordkit].
//
// # Faults
//
// Hold and Release are not sent again after a failure: either write, sent
// again, could undo another caller's Release or Hold made meanwhile.
//
//	method          quorum lost, etcd          client closed  refused (RBAC)    ctx ends
//	                unreachable
//	Barrier.Hold,   returned                   an error       returned          ctx's error
//	Barrier.Release
//	Barrier.Wait    reads retried, the watch   an error       returned at once  ctx's error
//	                re-established
//	Enter           retried; ErrLost once the  an error       returned at once  ctx's error; key deleted
//	                lease cannot be confirmed
//	Leave           retried                    an error       returned at once  ctx's error; the
//	                                                                            participant has left
//
// # Keys
//
// A barrier named "b" uses "b/hold". A double barrier named "d" uses
// "d/waiters/<lease id in hex>_<random>" for participants and "d/ready" for
// the ready marker. Names are key prefixes: do not nest them.
package barrier
