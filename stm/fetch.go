package stm

import (
	"errors"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
		t.remember(s, out[n+i], t.readRev(out[n+i]))
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

// remember caches what a read of s returned at rev, for the attempt to use.
func (t *tx) remember(s rangeSpec, r *clientv3.GetResponse, rev int64) {
	if t.cache == nil {
		t.cache = make(map[string]*mvccpb.KeyValue)
		t.cacheRanges = make(map[rangeSpec]*rangeRead)
	}
	t.cacheRev = r.Header.Revision
	if s.end == "" {
		t.cache[s.start] = first(r)
	} else {
		t.cacheRanges[s] = &rangeRead{spec: s, rev: rev, kvs: r.Kvs, more: r.More}
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
