package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Kinds of coordkit names, as ls shows them. A lock and an election keep
// the same keys (one per candidate, the first holds), so they cannot be
// told apart from etcd.
const (
	kindLock      = "lock/election"
	kindSemaphore = "semaphore"
	kindRWLock    = "rwlock"
)

// holdKey is a key in a layout that lockctl knows: a waiter or holder of a
// coordkit (or etcd concurrency) mutex, election, semaphore or rwmutex.
type holdKey struct {
	name   string // the primitive's prefix without its final "/"
	kind   string
	writer bool // rwlock: a writer's key
	kv     *mvccpb.KeyValue
}

// parseHold tells whether kv is a hold: a key on a lease, whose last
// element is that lease in hex (etcd's concurrency.Mutex and Election,
// etcdctl lock and elect) or the lease in hex, "_" and 8 hex digits
// (coordkit's), directly under the name, or under "<name>/read/" or
// "<name>/write/" for an rwmutex. Any other key is not a hold, whatever
// its value: release never touches it and ls does not list it.
func parseHold(kv *mvccpb.KeyValue) (holdKey, bool) {
	if kv.Lease == 0 {
		return holdKey{}, false
	}
	key := string(kv.Key)
	i := strings.LastIndexByte(key, '/')
	if i <= 0 {
		return holdKey{}, false
	}
	dir, base := key[:i], key[i+1:]
	lease := fmt.Sprintf("%x", kv.Lease)
	if rest, ok := strings.CutPrefix(base, lease); !ok || (rest != "" && !isSuffix(rest)) {
		return holdKey{}, false
	}
	h := holdKey{name: dir, kind: kindLock, kv: kv}
	if n, ok := strings.CutSuffix(dir, "/read"); ok && n != "" {
		h.name, h.kind = n, kindRWLock
	} else if n, ok := strings.CutSuffix(dir, "/write"); ok && n != "" {
		h.name, h.kind, h.writer = n, kindRWLock, true
	} else if _, ok := semRecord(kv.Value); ok {
		h.kind = kindSemaphore
	}
	return h, true
}

// isSuffix reports whether s is coordkit's key suffix: "_" and 8 hex digits.
func isSuffix(s string) bool {
	if len(s) != 9 || s[0] != '_' {
		return false
	}
	for _, c := range s[1:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// semaphoreRecord is the value of a semaphore's key.
type semaphoreRecord struct {
	Weight int    `json:"weight"`
	Limit  int    `json:"limit"`
	Value  string `json:"value"`
}

func semRecord(v []byte) (semaphoreRecord, bool) {
	var r semaphoreRecord
	if json.Unmarshal(v, &r) != nil || r.Limit <= 0 {
		return semaphoreRecord{}, false
	}
	return r, true
}

// holders returns, for one name's hold keys in line order (by create
// revision), which of them hold: the first of a lock or election; the
// first that fit in the limit of a semaphore, in line order; the first
// writer of an rwlock, or the readers ahead of any writer.
func holders(hs []holdKey) []bool {
	out := make([]bool, len(hs))
	if len(hs) == 0 {
		return out
	}
	switch hs[0].kind {
	case kindSemaphore:
		used := 0
		for i, h := range hs {
			r, _ := semRecord(h.kv.Value)
			if used+r.Weight > r.Limit {
				break
			}
			used += r.Weight
			out[i] = true
		}
	case kindRWLock:
		if hs[0].writer {
			out[0] = true
			break
		}
		for i, h := range hs {
			if h.writer {
				break
			}
			out[i] = true
		}
	default:
		out[0] = true
	}
	return out
}
