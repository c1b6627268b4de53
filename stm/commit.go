package stm

import (
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// commit is the Txn that ends an attempt: the compares that make it fail if
// what the attempt read (or wrote) changed, the writes, and, run only when
// the compares fail, the reads the next attempt will need.
type commit struct {
	cmps     []clientv3.Cmp
	writes   []clientv3.Op
	reads    []rangeSpec // run in the Txn's else branch
	readOnly bool        // nothing to send: the reads are the result
	rev      int64       // for readOnly: the revision the reads saw
	// guarded is true when every written key is compared, so that sending
	// the commit again after an unknown outcome cannot apply it twice: if
	// the first sending took effect, the compares of the second fail.
	guarded bool
}

func (t *tx) commit() commit {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c commit
	keys := sortedKeys(t.writes)
	for _, k := range keys {
		c.writes = append(c.writes, t.writes[k].op)
	}
	switch {
	case len(c.writes) == 0 && t.iso.snapshot():
		// Every read came from one linearizable revision: the attempt
		// saw a consistent state and has nothing to make atomic.
		return commit{readOnly: true, rev: t.rev}
	case len(c.writes) == 0 && t.iso == ReadCommitted:
		return commit{readOnly: true, rev: t.maxRev}
	case t.iso == ReadCommitted:
		return c
	}

	// A key is unchanged if its mod revision is the one read (0: still
	// absent). A range is unchanged if no key in it was written after the
	// read (catches inserts and updates) and every key it returned is
	// unchanged (catches deletes).
	seen := make(map[string]int64, len(t.reads))
	for _, k := range sortedKeys(t.reads) {
		rev := modRev(t.reads[k])
		seen[k] = rev
		c.cmps = append(c.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
		c.reads = append(c.reads, rangeSpec{start: k})
	}
	for _, r := range t.ranges {
		c.cmps = append(c.cmps, clientv3.Compare(clientv3.ModRevision(r.spec.start).WithRange(r.window()), "<", r.rev+1))
		for _, kv := range r.kvs {
			k := string(kv.Key)
			if rev, ok := seen[k]; ok && rev == kv.ModRevision {
				continue
			}
			seen[k] = kv.ModRevision
			c.cmps = append(c.cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		}
		c.reads = append(c.reads, r.spec)
	}
	if t.iso == SerializableSnapshot && t.rev != 0 {
		for _, k := range keys {
			if _, ok := seen[k]; !ok {
				c.cmps = append(c.cmps, clientv3.Compare(clientv3.ModRevision(k), "<", t.rev+1))
			}
		}
	}
	c.guarded = true
	for _, k := range keys {
		if _, ok := seen[k]; !ok && (t.iso != SerializableSnapshot || t.rev == 0) {
			c.guarded = false
		}
	}
	for _, k := range t.prefetch {
		s := rangeSpec{start: k}
		if _, ok := t.reads[k]; !ok && !slices.Contains(c.reads, s) {
			c.reads = append(c.reads, s)
		}
	}
	return c
}

// loadElse keeps what a failed commit read, for the next attempt.
func (t *tx) loadElse(c commit, resp *clientv3.TxnResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCache()
	if len(resp.Responses) != len(c.reads) {
		return
	}
	for i, s := range c.reads {
		r := (*clientv3.GetResponse)(resp.Responses[i].GetResponseRange())
		r.Header = resp.Header
		t.remember(s, r, resp.Header.Revision)
	}
}

// rereadNext makes the next attempt read afresh, in its first round trip,
// what this one read.
func (t *tx) rereadNext(c commit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCache()
	t.hints = c.reads
}

func modRev(kv *mvccpb.KeyValue) int64 {
	if kv == nil {
		return 0
	}
	return kv.ModRevision
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
