package holds

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Kinds of coordkit names. A lock and an election keep the same keys (one
// per candidate, the first holds), so they cannot be told apart from etcd.
const (
	KindLock      = "lock/election"
	KindSemaphore = "semaphore"
	KindRWLock    = "rwlock"
)

// ErrNotHold is returned by [Revoke] when the lease also carries a key
// that is not a hold: revoking it would delete that key too.
var ErrNotHold = errors.New("holds: not a hold")

// Key is a key in a layout that lockctl knows: a waiter or holder of a
// coordkit (or etcd concurrency) mutex, election, semaphore or rwmutex.
type Key struct {
	Name   string // the primitive's prefix without its final "/"
	Kind   string
	Writer bool // rwlock: a writer's key
	KV     *mvccpb.KeyValue
}

// Parse tells whether kv is a hold: a key on a lease, whose last element
// is that lease in hex (etcd's concurrency.Mutex and Election, etcdctl
// lock and elect) or the lease in hex, "_" and 8 hex digits (coordkit's),
// directly under the name, or under "<name>/read/" or "<name>/write/" for
// an rwmutex. Any other key is not a hold, whatever its value: release
// never touches it and ls does not list it.
func Parse(kv *mvccpb.KeyValue) (Key, bool) {
	if kv.Lease == 0 {
		return Key{}, false
	}
	key := string(kv.Key)
	i := strings.LastIndexByte(key, '/')
	if i <= 0 {
		return Key{}, false
	}
	dir, base := key[:i], key[i+1:]
	lease := fmt.Sprintf("%x", kv.Lease)
	if rest, ok := strings.CutPrefix(base, lease); !ok || (rest != "" && !isSuffix(rest)) {
		return Key{}, false
	}
	h := Key{Name: dir, Kind: KindLock, KV: kv}
	if n, ok := strings.CutSuffix(dir, "/read"); ok && n != "" {
		h.Name, h.Kind = n, KindRWLock
	} else if n, ok := strings.CutSuffix(dir, "/write"); ok && n != "" {
		h.Name, h.Kind, h.Writer = n, KindRWLock, true
	} else if _, ok := semRecord(kv.Value); ok {
		h.Kind = KindSemaphore
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

// Holders returns, for one name's hold keys in line order (by create
// revision), which of them hold: the first of a lock or election; the
// first that fit in the limit of a semaphore, in line order; the first
// writer of an rwlock, or the readers ahead of any writer.
func Holders(hs []Key) []bool {
	out := make([]bool, len(hs))
	if len(hs) == 0 {
		return out
	}
	switch hs[0].Kind {
	case KindSemaphore:
		used := 0
		for i, h := range hs {
			r, _ := semRecord(h.KV.Value)
			if used+r.Weight > r.Limit {
				break
			}
			used += r.Weight
			out[i] = true
		}
	case KindRWLock:
		if hs[0].Writer {
			out[0] = true
			break
		}
		for i, h := range hs {
			if h.Writer {
				break
			}
			out[i] = true
		}
	default:
		out[0] = true
	}
	return out
}
