package stm

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tx is the view of etcd that a transaction function gets from [Run]. Reads
// go to etcd (or to what the transaction already read) and are checked at
// commit as the isolation level says; writes are buffered and sent in the
// commit, all or nothing. Reads see the transaction's own writes.
//
// Values are Go strings, as in etcd's own STM; they may hold any bytes.
//
// A read that fails returns the error, and the attempt is then over: later
// reads return the same error and nothing is committed, whatever the
// function returns. [Run] retries the attempt if the error is transient.
//
// A Tx is valid only until its function returns, and is safe for concurrent
// use by goroutines that the function starts and waits for. Only this
// package implements Tx.
type Tx interface {
	// Get returns the value of key, or "" if it does not exist.
	Get(key string) (string, error)
	// GetMany returns the values of keys in the same order, "" for a
	// key that does not exist, reading those not yet read in one round
	// trip.
	GetMany(keys ...string) ([]string, error)
	// Range returns the keys in [start, end) in key order, at most limit
	// of them (0: no limit). Use clientv3.GetPrefixRangeEnd(p) as end to
	// read the prefix p, and "\x00" to read every key from start. The
	// range is checked at commit as a key is: if a key was added to,
	// changed in or removed from what the read returned, the commit fails
	// and the attempt is retried. Keys written by the transaction have
	// ModRevision 0. Range panics if limit < 0 or end is "".
	Range(start, end string, limit int64) ([]KV, error)
	// Rev returns the mod revision of key as the transaction read it
	// (its own writes are ignored), or 0 if it does not exist.
	Rev(key string) (int64, error)
	// Put sets key to val at commit. opts are etcd's put options, such
	// as clientv3.WithLease.
	Put(key, val string, opts ...clientv3.OpOption)
	// Delete deletes key at commit.
	Delete(key string)

	sealed()
}

// KV is a key read by [Tx.Range].
type KV struct {
	Key, Value     string
	CreateRevision int64
	ModRevision    int64
	Version        int64
}

type write struct {
	val string
	del bool
	op  clientv3.Op
}

// tx is the Tx of one Run; begin resets it for each attempt.
type tx struct {
	ctx      context.Context
	cli      *clientv3.Client
	iso      Isolation
	prefetch []string // WithPrefetch's keys

	mu     sync.Mutex                  // guards the fields below
	done   bool                        // the attempt's function returned
	err    error                       // first read error of the attempt
	rev    int64                       // snapshot levels: revision of all reads, 0 before the first
	maxRev int64                       // highest revision read in the attempt
	reads  map[string]*mvccpb.KeyValue // keys read, nil if absent
	ranges []*rangeRead                // ranges read
	writes map[string]write

	// hints are read with the attempt's first read, into the cache: the
	// prefetch keys, and after a conflict what the last attempt read.
	hints []rangeSpec
	// What the attempt knows but has not read yet, at cacheRev: what the
	// hints or the previous attempt's failed commit read.
	cache       map[string]*mvccpb.KeyValue
	cacheRanges map[rangeSpec]*rangeRead
	cacheRev    int64
}

func (t *tx) sealed() {}

func (t *tx) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done, t.err = false, nil
	t.rev, t.maxRev = 0, 0
	t.reads = make(map[string]*mvccpb.KeyValue)
	t.ranges = nil
	t.writes = make(map[string]write)
	if t.iso.snapshot() && (len(t.cache) > 0 || len(t.cacheRanges) > 0) {
		t.rev = t.cacheRev
	}
}

func (t *tx) end() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}

func (t *tx) readErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// dropCache forgets what the last failed commit read. The caller holds mu
// or owns t between attempts.
func (t *tx) dropCache() {
	t.cache, t.cacheRanges, t.cacheRev = nil, nil, 0
}

func (t *tx) Get(key string) (string, error) {
	kvs, err := t.get([]string{key}, true)
	if err != nil {
		return "", err
	}
	return value(kvs[0]), nil
}

func (t *tx) GetMany(keys ...string) ([]string, error) {
	kvs, err := t.get(keys, true)
	if err != nil {
		return nil, err
	}
	vals := make([]string, len(kvs))
	for i, kv := range kvs {
		vals[i] = value(kv)
	}
	return vals, nil
}

func (t *tx) Rev(key string) (int64, error) {
	kvs, err := t.get([]string{key}, false)
	if err != nil || kvs[0] == nil {
		return 0, err
	}
	return kvs[0].ModRevision, nil
}

func value(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return ""
	}
	return string(kv.Value)
}

// get returns the keys' values (nil for absent), from the transaction's
// writes if own is set, else from what it read, reading the rest.
func (t *tx) get(keys []string, own bool) ([]*mvccpb.KeyValue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(); err != nil {
		return nil, err
	}
	out := make([]*mvccpb.KeyValue, len(keys))
	var missing []string
	for i, k := range keys {
		if own {
			if w, ok := t.writes[k]; ok {
				if !w.del {
					out[i] = &mvccpb.KeyValue{Key: []byte(k), Value: []byte(w.val)}
				}
				continue
			}
		}
		if kv, ok := t.lookup(k); ok {
			out[i] = kv
			continue
		}
		if !slices.Contains(missing, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		specs := make([]rangeSpec, len(missing))
		for i, k := range missing {
			specs[i] = rangeSpec{start: k}
		}
		resps, err := t.fetch(specs)
		if err != nil {
			t.err = fmt.Errorf("stm: get %q: %w", missing, err)
			return nil, t.err
		}
		for i, k := range missing {
			t.reads[k] = first(resps[i])
		}
		for i, k := range keys {
			if kv, ok := t.reads[k]; ok && (!own || !hasKey(t.writes, k)) {
				out[i] = kv
			}
		}
	}
	return out, nil
}

func hasKey(m map[string]write, k string) bool { _, ok := m[k]; return ok }

// lookup finds what the attempt already knows of key.
func (t *tx) lookup(k string) (*mvccpb.KeyValue, bool) {
	if kv, ok := t.reads[k]; ok {
		return kv, true
	}
	for _, r := range t.ranges {
		if kv, ok := r.find(k); ok {
			return kv, true
		}
	}
	if kv, ok := t.cache[k]; ok {
		delete(t.cache, k)
		t.reads[k] = kv
		return kv, true
	}
	return nil, false
}

func first(r *clientv3.GetResponse) *mvccpb.KeyValue {
	if len(r.Kvs) == 0 {
		return nil
	}
	return r.Kvs[0]
}

func (t *tx) usable() error {
	if t.done {
		return ErrTxDone
	}
	return t.err
}

func (t *tx) Put(key, val string, opts ...clientv3.OpOption) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mustBeOpen("Put")
	t.writes[key] = write{val: val, op: clientv3.OpPut(key, val, opts...)}
}

func (t *tx) Delete(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mustBeOpen("Delete")
	t.writes[key] = write{del: true, op: clientv3.OpDelete(key)}
}

func (t *tx) mustBeOpen(method string) {
	if t.done {
		panic("stm: Tx." + method + " called after the transaction function returned")
	}
}
