// Package queue provides a distributed work queue on etcd: FIFO with
// priorities and delays, a blocking Dequeue with a context, and a reliable
// mode in which an item returns to the queue if its consumer dies.
//
// # Order
//
// Every item has a priority (default 0; lower values first, see
// [WithPriority]) and a sequence number assigned when it is enqueued, in
// the order the enqueues commit in etcd: if one Enqueue returns before
// another starts, the first item has the smaller number. Items are handed
// out by priority, then by sequence number: FIFO by enqueue revision within
// a priority.
//
// A delayed item ([WithDelay], [WithNotBefore]) is not handed out before its
// time, judged on the consumer's clock. From then on it takes its place by
// its priority and sequence number, like any other: a delayed item that
// falls due goes ahead of items enqueued after it.
//
// The order is exact for a consumer that has not been losing races to
// others: a Dequeue that starts after an Enqueue (or a [Claim.Nack])
// returned never passes over that item for a later one, as long as fewer
// than 64 claimed items sit ahead of it. Consumers that compete for the
// same items may see them out of order within one batch (see [WithBatch]):
// one that loses the race for the first item takes another from the batch
// it has read, rather than everybody trying the first item again.
//
// # Delivery
//
// [Queue.Dequeue] hands out each item at most once: it deletes the item in a
// transaction guarded by the item's revision, so two consumers can never both
// get it, and returns it. An item whose consumer dies after Dequeue returned
// is gone.
//
// [Queue.Claim] hands out each item at least once: it marks the item as
// claimed with a key on the consumer's session lease and returns it; the
// item stays in the queue, invisible to others, until [Claim.Ack] removes it.
// [Claim.Nack], a closed session or an expired lease makes it visible again,
// in its original place, so a consumer that crashes mid-work loses nothing;
// the price is that the item may be processed twice, when a consumer's lease
// ends while it still works on the item. [Claim.Done] reports that, and
// [Claim.IsOwner] lets a consumer store its result and acknowledge the item
// in one transaction, which makes processing whose result lives in etcd
// exactly once.
//
// A claimed item is counted by [Queue.Len] and is never handed out by
// Dequeue.
//
// # Waiting and cost
//
// A consumer reads a batch of item keys (no values) at a time and takes one
// in a transaction that also reads the next batch, so a busy consumer makes
// about one round trip per item. A consumer with nothing to take watches the
// queue's prefix, starting in sync with the store, and takes new items from
// the watch events without reading again. Every waiting consumer sees every
// new item, so an idle pool of n consumers makes up to n attempts for each
// item that arrives one at a time; when the queue has work, consumers do not
// wait and are not woken.
//
// Enqueues through one handle are serialised, and producers on different
// handles take turns on the queue's sequence key: an Enqueue that loses a
// turn costs one more round trip.
//
// # Faults
//
// A claim is held by the consumer's session lease, as every coordkit hold
// is; how it is lost, and which of etcd's faults a call rides out, is
// written once in [github.com/coordkit/coordkit]. A take (the delete of
// Dequeue or the marker of Claim) whose outcome etcd did not report is not
// sent again: it may have been applied, and the call returns etcd's error.
//
//	method                 quorum lost, etcd          client closed  refused (RBAC)    ctx ends
//	                       unreachable
//	Dequeue, Claim         reads and waits retried;   an error       returned at once  ctx's error; queue
//	                       an unanswered take                                          unchanged (a take in
//	                       returned                                                    flight is awaited)
//	TryDequeue, TryClaim   as Dequeue, Claim          an error       returned at once  ctx's error
//	Enqueue                returned (item added       an error       returned          ctx's error (item
//	                       at most once)                                               added at most once)
//	Len                    returned                   an error       returned          ctx's error
//	Claim.Ack, Claim.Nack  returned; may be called    an error       returned          returned; may be
//	                       again                                                       called again
//
// # Keys
//
// A queue named "jobs" keeps everything under "jobs/": "jobs/seq" (the
// sequence counter), "jobs/ready/<priority>/<sequence>" (items, value as
// enqueued), "jobs/delayed/<due>/<priority>/<sequence>" (items not yet due)
// and "jobs/claim/<priority>/<sequence>" (claim markers, on leases). To
// delete a queue, delete its prefix. Queue names are key prefixes: do not
// nest them.
package queue
