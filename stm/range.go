package stm

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

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
