package holds

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/coordkit/coordkit/internal/waitq"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// HolderInfo is what lockctl stores in a hold's key: who holds it.
type HolderInfo struct {
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Program string `json:"program,omitempty"`
	// Command is read, never written: a value in which another writer
	// stored the whole argv.
	Command []string `json:"command,omitempty"`
	Since   string   `json:"since"`
}

// What is the holder's program as status shows it.
func (h *HolderInfo) What() string {
	if h.Program != "" {
		return h.Program
	}
	return strings.Join(h.Command, " ")
}

// Entry is one key of a lock, semaphore or election, as status shows it.
type Entry struct {
	Key    string      `json:"key"`
	Role   string      `json:"role"`             // holder, waiter or other
	Weight int         `json:"weight,omitempty"` // semaphore permits asked for
	Limit  int         `json:"limit,omitempty"`  // semaphore limit
	Lease  string      `json:"lease"`
	TTL    int64       `json:"ttl"`   // seconds left on the lease, -1 if none
	Token  int64       `json:"token"` // the key's create revision
	Holder *HolderInfo `json:"holder,omitempty"`
	Value  string      `json:"value,omitempty"` // when not written by lockctl
}

// Entries reads the keys under prefix in line order, with each hold's
// role: the holder(s) and leader first, then the waiters. A key that is
// not a hold of this name (see [Parse]) has the role "other"; the slots of
// a line's tail ([waitq.TailKeys]), which only point at a waiter, are left
// out.
func Entries(ctx context.Context, cli *clientv3.Client, prefix string) ([]Entry, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	resp.Kvs = slices.DeleteFunc(resp.Kvs, func(kv *mvccpb.KeyValue) bool { return waitq.IsTail(prefix, string(kv.Key)) })
	name := strings.TrimSuffix(prefix, "/")
	var hs []Key
	var at []int // index in resp.Kvs of each of hs
	for i, kv := range resp.Kvs {
		if h, ok := Parse(kv); ok && h.Name == name {
			hs, at = append(hs, h), append(at, i)
		}
	}
	roles := make([]string, len(resp.Kvs))
	for i := range roles {
		roles[i] = "other"
	}
	for i, holds := range Holders(hs) {
		roles[at[i]] = map[bool]string{true: "holder", false: "waiter"}[holds]
	}
	var out []Entry
	for i, kv := range resp.Kvs {
		e := Entry{Key: string(kv.Key), Role: roles[i], Lease: fmt.Sprintf("%x", kv.Lease), TTL: -1, Token: kv.CreateRevision}
		value := kv.Value
		// A semaphore's keys hold {"weight","limit","value"}.
		if sem, ok := semRecord(kv.Value); ok {
			e.Weight, e.Limit, value = sem.Weight, sem.Limit, []byte(sem.Value)
		}
		if kv.Lease != 0 {
			if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err == nil {
				e.TTL = ttl.TTL
			}
		}
		var hi HolderInfo
		if json.Unmarshal(value, &hi) == nil && hi.PID != 0 {
			e.Holder = &hi
		} else {
			e.Value = string(value)
		}
		out = append(out, e)
	}
	return out, nil
}

// Name is a coordkit name and how many hold or wait.
type Name struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Holders int    `json:"holders"`
	Waiters int    `json:"waiters"`
}

// Names groups the hold keys among kvs (in line order) by name, in the
// order each name first appears, with namespace cut from each name; other
// keys are left out.
func Names(kvs []*mvccpb.KeyValue, namespace string) []Name {
	groups := map[string][]Key{}
	var order []string
	for _, kv := range kvs {
		h, ok := Parse(kv)
		if !ok {
			continue
		}
		if _, seen := groups[h.Name]; !seen {
			order = append(order, h.Name)
		}
		groups[h.Name] = append(groups[h.Name], h)
	}
	var out []Name
	for _, n := range order {
		hs := groups[n]
		l := Name{Name: strings.TrimPrefix(n, namespace), Kind: hs[0].Kind}
		for _, holds := range Holders(hs) {
			if holds {
				l.Holders++
			} else {
				l.Waiters++
			}
		}
		out = append(out, l)
	}
	return out
}

// Revoke revokes lease id, which carries the hold key, unless the lease
// also carries a key that is neither a hold nor a slot of a line's tail
// ([waitq.TailKeys], which goes with its waiter): then it returns an error
// wrapping [ErrNotHold] and deletes nothing.
func Revoke(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, key string) error {
	ttl, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
	if err != nil {
		return err
	}
	for _, k := range ttl.Keys {
		if _, ok := Parse(&mvccpb.KeyValue{Key: k, Lease: int64(id)}); !ok && !isTailSlot(string(k)) {
			return fmt.Errorf("%w: the lease %x of %s also carries %s, which is not a hold: revoking it would delete that key too; nothing deleted", ErrNotHold, int64(id), key, k)
		}
	}
	_, err = cli.Revoke(ctx, id)
	return err
}

// First returns the first hold among es (the holder, in line order) and how
// many of es are not holds: the two facts a release decides on. h is nil
// when es has no hold.
func First(es []Entry) (h *Entry, others int) {
	for i := range es {
		switch {
		case es[i].Role == "other":
			others++
		case h == nil:
			h = &es[i]
		}
	}
	return h, others
}

// isTailSlot reports whether key is a slot of the tail of the line it lies
// under.
func isTailSlot(key string) bool {
	i := strings.LastIndexByte(key, '/')
	return i >= 0 && waitq.IsTail(key[:i+1], key)
}
