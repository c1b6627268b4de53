package stm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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

// rangeSpec is a read: of the key start if end is "", else of the range
// [start, end) with a limit.
type rangeSpec struct {
	start, end string
	limit      int64 // limit sent to etcd, 0 for none
}

type rangeRead struct {
	spec rangeSpec
	rev  int64 // revision the range was read at
	kvs  []*mvccpb.KeyValue
	more bool // etcd had more keys than limit
}

// window is the end of the part of the range that the read covered: up to
// and including the last key when etcd cut the read at the limit.
func (r *rangeRead) window() string {
	if r.more && len(r.kvs) > 0 {
		return string(r.kvs[len(r.kvs)-1].Key) + "\x00"
	}
	return r.spec.end
}

func (r *rangeRead) find(key string) (*mvccpb.KeyValue, bool) {
	i := sort.Search(len(r.kvs), func(i int) bool { return string(r.kvs[i].Key) >= key })
	if i < len(r.kvs) && string(r.kvs[i].Key) == key {
		return r.kvs[i], true
	}
	return nil, false
}

func inRange(key, start, end string) bool {
	return key >= start && (end == "\x00" || key < end)
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

func (t *tx) Range(start, end string, limit int64) ([]KV, error) {
	if limit < 0 {
		panic(fmt.Sprintf("stm: Range(%q, %q, %d): negative limit", start, end, limit))
	}
	if end == "" {
		panic(fmt.Sprintf("stm: Range(%q, \"\"): empty end; use Get for one key", start))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.usable(); err != nil {
		return nil, err
	}
	// Ask for as many more keys as the transaction deletes in the range,
	// so that limit keys are left after its own writes are applied.
	spec := rangeSpec{start: start, end: end}
	if limit > 0 {
		spec.limit = limit
		for k, w := range t.writes {
			if w.del && inRange(k, start, end) {
				spec.limit++
			}
		}
	}
	r := t.findRange(spec)
	if r == nil {
		resps, err := t.fetch([]rangeSpec{spec})
		if err != nil {
			t.err = fmt.Errorf("stm: range [%q, %q): %w", start, end, err)
			return nil, t.err
		}
		r = &rangeRead{spec: spec, rev: t.readRev(resps[0]), kvs: resps[0].Kvs, more: resps[0].More}
		t.ranges = append(t.ranges, r)
	}
	return t.merge(r, limit), nil
}

func (t *tx) findRange(spec rangeSpec) *rangeRead {
	for _, r := range t.ranges {
		if r.spec == spec {
			return r
		}
	}
	if r, ok := t.cacheRanges[spec]; ok {
		delete(t.cacheRanges, spec)
		t.ranges = append(t.ranges, r)
		return r
	}
	return nil
}

// merge applies the transaction's writes to what the range read returned.
func (t *tx) merge(r *rangeRead, limit int64) []KV {
	out := make([]KV, 0, len(r.kvs))
	for _, kv := range r.kvs {
		if !hasKey(t.writes, string(kv.Key)) {
			out = append(out, KV{Key: string(kv.Key), Value: string(kv.Value),
				CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version})
		}
	}
	n := len(out)
	for k, w := range t.writes {
		// A put past what a cut read covered sorts after limit keys.
		if !w.del && inRange(k, r.spec.start, r.window()) {
			out = append(out, KV{Key: k, Value: w.val})
		}
	}
	if len(out) > n {
		slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	}
	if limit > 0 && int64(len(out)) > limit {
		out = out[:limit]
	}
	return out
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

// readRev is the revision a read response reflects.
func (t *tx) readRev(r *clientv3.GetResponse) int64 {
	if t.iso.snapshot() {
		return t.rev
	}
	return r.Header.Revision
}

// fetch reads specs (a key when end is "", else a range) in one round trip.
// At the attempt's first read it also reads the hints not yet known. Under
// the snapshot levels, the first read is linearizable and fixes the
// attempt's revision; later ones read at that revision from the member the
// client talks to.
func (t *tx) fetch(specs []rangeSpec) ([]*clientv3.GetResponse, error) {
	n := len(specs)
	if len(t.reads) == 0 && len(t.ranges) == 0 {
		for _, s := range t.hints {
			if !t.cached(s) && !slices.Contains(specs, s) {
				specs = append(specs, s)
			}
		}
	}
	var opts []clientv3.OpOption
	switch {
	case t.iso.snapshot() && t.rev != 0:
		opts = []clientv3.OpOption{clientv3.WithRev(t.rev), clientv3.WithSerializable()}
	case !t.iso.snapshot():
		opts = []clientv3.OpOption{clientv3.WithSerializable()}
	}
	resp, err := t.do(specs, opts...)
	if errors.Is(err, rpctypes.ErrFutureRev) {
		// This member is behind the one that served the first read: read
		// at the same revision through the leader.
		resp, err = t.do(specs, clientv3.WithRev(t.rev))
	}
	if err != nil {
		return nil, err
	}
	if t.iso.snapshot() && t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	t.maxRev = max(t.maxRev, resp.Header.Revision)
	out := make([]*clientv3.GetResponse, len(resp.Responses))
	for i, r := range resp.Responses {
		out[i] = (*clientv3.GetResponse)(r.GetResponseRange())
		out[i].Header = resp.Header
	}
	for i, s := range specs[n:] {
		t.remember(s, out[n+i])
	}
	return out[:n], nil
}

func (t *tx) cached(s rangeSpec) bool {
	if s.end == "" {
		_, ok := t.cache[s.start]
		return ok
	}
	_, ok := t.cacheRanges[s]
	return ok
}

// remember caches what a read of s returned, for the attempt to use.
func (t *tx) remember(s rangeSpec, r *clientv3.GetResponse) {
	if t.cache == nil {
		t.cache = make(map[string]*mvccpb.KeyValue)
		t.cacheRanges = make(map[rangeSpec]*rangeRead)
	}
	t.cacheRev = r.Header.Revision
	if s.end == "" {
		t.cache[s.start] = first(r)
	} else {
		t.cacheRanges[s] = &rangeRead{spec: s, rev: t.readRev(r), kvs: r.Kvs, more: r.More}
	}
}

func (t *tx) do(specs []rangeSpec, opts ...clientv3.OpOption) (*clientv3.TxnResponse, error) {
	ops := make([]clientv3.Op, len(specs))
	for i, s := range specs {
		ops[i] = s.op(opts...)
	}
	return t.cli.Txn(t.ctx).Then(ops...).Commit()
}

// op is a get of the key s.start if s.end is "", else of the range.
func (s rangeSpec) op(opts ...clientv3.OpOption) clientv3.Op {
	if s.end != "" {
		opts = append(opts, clientv3.WithRange(s.end), clientv3.WithLimit(s.limit))
	}
	return clientv3.OpGet(s.start, opts...)
}
