package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/waitq"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Item is one item taken from a queue.
type Item struct {
	// Key is the item's key under the queue's ready/ directory. It is
	// unique to the item for the queue's life.
	Key string
	// Value is what was enqueued.
	Value []byte
	// Priority is the priority it was enqueued with.
	Priority int
}

// Queue is a distributed queue on one name. It is safe for concurrent use;
// goroutines and processes may each have their own *Queue on the same name,
// and every item is handed to exactly one of them. A Queue must not be
// copied.
type Queue struct {
	cli  *clientv3.Client
	l    layout
	opts options

	// enq has room for one token: the goroutine that holds it is assigning
	// the next sequence number, so that enqueues through one handle do not
	// race each other for it.
	enq    chan struct{}
	seqRev int64  // mod revision of the sequence key when last seen; guarded by enq
	seqVal uint64 // its value then; guarded by enq
	seqOK  bool   // seqRev and seqVal are known; guarded by enq

	mu        sync.Mutex      // guards view, inflight, contended, losses, rtt, claims
	view      *view           // the newest view of the queue's head, for the next call
	inflight  map[string]bool // ready keys a goroutine of this handle is trying to take
	contended int             // picks left to spread after a lost race
	losses    int             // races lost in a row, for holding back when idle
	rtt       time.Duration   // smoothed duration of a take
	claims    int64           // claim markers seen in the last read
}

// New returns a queue on name that talks to etcd through cli. Items live
// under "<name>/" (see the package documentation for the layout). New does
// no I/O. It panics if cli is nil or name is empty or "/".
func New(cli *clientv3.Client, name string, opts ...Option) *Queue {
	if cli == nil {
		panic("queue: nil client")
	}
	o := options{batch: DefaultBatch}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &Queue{
		cli:      cli,
		l:        newLayout(waitq.Prefix("queue", name)),
		opts:     o,
		enq:      make(chan struct{}, 1),
		inflight: map[string]bool{},
	}
}

// Name returns the queue's key prefix: its name followed by "/", whatever the
// name ends with, as etcd's constructors make it.
func (q *Queue) Name() string { return q.l.prefix }

// Enqueue adds value to the queue, with priority 0 and no delay unless
// options say otherwise, and returns once it is stored. It is one round trip
// when this handle is the only producer; concurrent producers take turns
// assigning sequence numbers, and one that loses a turn tries again at once
// with the number it learnt.
//
// If Enqueue returns an error, the item was not added, except when the
// error comes from ctx or the connection while the write was in flight: the
// item may then have been added, once. Enqueue never adds an item twice.
func (q *Queue) Enqueue(ctx context.Context, value []byte, opts ...EnqueueOption) error {
	var o enqueueOptions
	for _, opt := range opts {
		opt.applyEnqueue(&o)
	}
	select {
	case q.enq <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("queue: enqueue %q: %w", q.l.prefix, ctx.Err())
	}
	defer func() { <-q.enq }()
	if err := q.enqueue(ctx, value, o); err != nil {
		return fmt.Errorf("queue: enqueue %q: %w", q.l.prefix, err)
	}
	return nil
}

func (q *Queue) enqueue(ctx context.Context, value []byte, o enqueueOptions) error {
	for {
		if !q.seqOK {
			resp, err := q.cli.Get(ctx, q.l.seq)
			if err != nil {
				return err
			}
			q.learnSeq(resp)
		}
		seq := q.seqVal + 1
		sfx := suffix(o.priority, seq)
		key := q.l.ready + sfx
		if o.notBefore.After(time.Now()) {
			key = q.l.delayedKey(o.notBefore, sfx)
		}
		resp, err := q.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(q.l.seq), "=", q.seqRev),
				clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(q.l.seq, strconv.FormatUint(seq, 10)),
				clientv3.OpPut(key, string(value))).
			Else(clientv3.OpGet(q.l.seq)).
			Commit()
		if err != nil {
			// The write may or may not have happened: the cached number
			// cannot be trusted either way.
			q.seqOK = false
			return err
		}
		if resp.Succeeded {
			q.seqRev, q.seqVal = resp.Header.Revision, seq
			return nil
		}
		get := (*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())
		if len(get.Kvs) > 0 && get.Kvs[0].ModRevision == q.seqRev {
			// The sequence number was ours but the key existed: someone
			// wrote into the queue's directories by hand.
			return fmt.Errorf("key %s exists already", key)
		}
		q.learnSeq(get)
	}
}

// learnSeq records the sequence counter as read. If the counter is absent
// (a new queue, or someone deleted it), numbering starts from the store's
// revision: every number handed out so far is below the revision at which
// it was handed out (numbers start at most at a revision and grow by one per
// write), so the new ones still sort after every item already queued.
func (q *Queue) learnSeq(resp *clientv3.GetResponse) {
	q.seqOK = true
	if len(resp.Kvs) == 0 {
		q.seqRev, q.seqVal = 0, uint64(resp.Header.Revision)
		return
	}
	kv := resp.Kvs[0]
	v, err := strconv.ParseUint(string(kv.Value), 10, 64)
	if err != nil {
		v = uint64(resp.Header.Revision)
	}
	q.seqRev, q.seqVal = kv.ModRevision, v
}

// Len returns the number of items in the queue: those ready, those claimed
// and not yet acknowledged, and those not yet due.
func (q *Queue) Len(ctx context.Context) (int, error) {
	resp, err := q.cli.Txn(ctx).Then(
		clientv3.OpGet(q.l.ready, clientv3.WithRange(q.l.readyEnd), clientv3.WithCountOnly()),
		clientv3.OpGet(q.l.delayed, clientv3.WithRange(q.l.delayedEnd), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("queue: len %q: %w", q.l.prefix, err)
	}
	n := resp.Responses[0].GetResponseRange().Count + resp.Responses[1].GetResponseRange().Count
	return int(n), nil
}

// Dequeue removes the first ready item and returns it, blocking until there
// is one or ctx is done. An item is ready when it is due and not claimed
// (see [Queue.Claim]). On failure it returns an error that satisfies
// errors.Is(err, ctx.Err()) when ctx ended, and leaves the queue unchanged.
//
// Dequeue hands each item out at most once: the item is deleted before it
// is returned, so one that is lost with its consumer is gone. Use
// [Queue.Claim] for at-least-once delivery. If ctx ends while the delete is
// in flight, Dequeue waits (at most a few seconds) for its outcome and, if
// it took the item, returns it: an item is lost in transit only if etcd
// cannot be reached to learn that outcome.
//
// While etcd fails transiently (between leaders, without a quorum, out of
// reach: see the package doc), Dequeue reads and waits again, paced, for as
// long as ctx lasts. It does not send again a delete whose outcome etcd did
// not report, since it may have been applied: it returns etcd's error, and
// the item may be gone.
func (q *Queue) Dequeue(ctx context.Context) (Item, error) {
	it, _, err := q.next(ctx, true, nil)
	if err != nil {
		return Item{}, fmt.Errorf("queue: dequeue %q: %w", q.l.prefix, err)
	}
	return it, nil
}

// TryDequeue is Dequeue without waiting: it returns [ErrEmpty] if no item
// is ready, or if every ready item is being taken by another call on the
// same handle.
func (q *Queue) TryDequeue(ctx context.Context) (Item, error) {
	it, _, err := q.next(ctx, false, nil)
	if err != nil {
		return Item{}, fmt.Errorf("queue: trydequeue %q: %w", q.l.prefix, err)
	}
	return it, nil
}

// errBusy reports that a take found no item it could decide on; internal.
var errBusy = errors.New("queue: busy")
