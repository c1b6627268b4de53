package waitq

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A line's tail is one key, under the line's prefix, that names the
// newest waiter to join it, so that the next waiter learns whom to wait
// for from one key, read in the Txn that joins, instead of from a read of
// the whole line. etcd visits every key of a range it reads, even with a
// limit (it counts them), and a Txn that writes runs in its single apply
// loop: a burst of N waiters that each read the line costs O(N²) there,
// and every lease renewal waits behind it. Joining through the tail costs
// O(1).
//
// The tail is two slots, of which at most one exists: a waiter that joins
// deletes the one that exists and creates the other, in its joining Txn,
// so the slot it creates has its key's create revision and its lease.
// etcd's Mutex, which takes every key under the prefix for a waiter, then
// sees a twin of the newest waiter, which goes when the waiter goes (its
// release, its abandonment and its lease delete both) or when a newer
// waiter replaces it: it never waits on the tail for longer than on the
// waiter itself. coordkit never waits on a slot: a slot that exists after a
// waiter joined is that waiter's twin or a newer one's.
//
// The tail is a hint. A waiter is admitted only by the read of the whole
// line after the key it waited for is deleted, as without it, so a waiter
// that did not write the tail (etcd's Mutex, a coordkit waiter of a short
// line) is never skipped. A line starts using its tail once a waiter finds
// it longer than [LineRead]: a short line is read whole at no great cost.
//
// A slot's value is the waiter's key.

// TailKeys returns the two slots of the tail of the line under prefix.
func TailKeys(prefix string) [2]string {
	return [2]string{prefix + "tail.0", prefix + "tail.1"}
}

// IsTail reports whether key is a slot of the tail of the line under
// prefix: not a waiter.
func IsTail(prefix, key string) bool {
	t := TailKeys(prefix)
	return key == t[0] || key == t[1]
}

// Tail makes the waiter join through its line's tail (see [TailKeys]) when
// it waits with a [First] turn, and delete the tail's slot that names it
// whenever it deletes its key.
func Tail() Option { return optionFunc(func(w *Waiter) { w.tail = true }) }

// tailOps returns, for a Join, the ops that swap the tail's slot to w and
// return the slot that existed, or, when neither exists, read up to
// [LineRead] keys of the line (as [First.Reads]).
func (w *Waiter) tailOps() []clientv3.Op {
	t := TailKeys(w.prefix)
	lease := clientv3.WithLease(w.session.Lease())
	swap := func(from, to string) []clientv3.Op {
		return []clientv3.Op{clientv3.OpGet(from), clientv3.OpDelete(from), clientv3.OpPut(to, w.key, lease)}
	}
	exists := func(k string) []clientv3.Cmp {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)}
	}
	return []clientv3.Op{clientv3.OpTxn(exists(t[0]), swap(t[0], t[1]), []clientv3.Op{
		clientv3.OpTxn(exists(t[1]), swap(t[1], t[0]), []clientv3.Op{clientv3.OpGet(w.prefix, lineOpts()...)}),
	})}
}

// untailOps returns the ops that delete each slot of the tail that names
// w's key, to run with every delete of the key; none when no slot can name
// it (its Join found the line without a tail and wrote none), so that an
// uncontended Unlock stays a plain Delete.
func (w *Waiter) untailOps() []clientv3.Op {
	if !w.tail || !(w.tailed || w.abandoned) {
		return nil
	}
	var ops []clientv3.Op
	for _, k := range TailKeys(w.prefix) {
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.Value(k), "=", w.key)},
			[]clientv3.Op{clientv3.OpDelete(k)}, nil))
	}
	return ops
}

// startTail creates the tail's first slot, naming w, if neither exists:
// a waiter does so when it finds its line longer than [LineRead]. A failed
// attempt only leaves the line without a tail for now.
func (w *Waiter) startTail(ctx context.Context) {
	w.tailed = true
	t := TailKeys(w.prefix)
	ctx, cancel := context.WithTimeout(ctx, FirstAttemptTimeout)
	defer cancel()
	_, _ = w.client().Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(t[0]), "=", 0), clientv3.Compare(clientv3.CreateRevision(t[1]), "=", 0), w.IsOwner()).
		Then(clientv3.OpPut(t[0], w.key, clientv3.WithLease(w.session.Lease()))).
		Commit()
}

// joinRead returns what the joining Txn's reads found, from the response
// to its first read: the tail's slot it replaced, or, when the line had no
// tail (or the waiter does not use it), up to [LineRead] keys of the line.
func joinRead(r *pb.ResponseOp) (line *pb.RangeResponse, slot *mvccpb.KeyValue) {
	for {
		tr := r.GetResponseTxn()
		if tr == nil {
			return r.GetResponseRange(), nil
		}
		if tr.Succeeded {
			kvs := tr.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 {
				return nil, &mvccpb.KeyValue{}
			}
			return nil, kvs[0]
		}
		r = tr.Responses[0]
	}
}

// slotWaiter returns the waiter a tail's slot names, nil if it names no
// waiter of the line. Its create revision is the slot's, which is the
// waiter's for a slot created as it joined, and later for the first slot
// of a line (a waiter that waits on it with a later revision only reads
// the line once more when it is deleted).
func slotWaiter(prefix string, slot *mvccpb.KeyValue) *mvccpb.KeyValue {
	key := string(slot.Value)
	if !strings.HasPrefix(key, prefix) || IsTail(prefix, key) || slot.CreateRevision == 0 {
		return nil
	}
	return &mvccpb.KeyValue{Key: []byte(key), CreateRevision: slot.CreateRevision}
}
