package queue

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// layout is where a queue keeps things under its prefix. An item's identity
// is its suffix "<priority+32768, 5 digits>/<sequence, 20 digits>", the
// same under ready/, claim/ and delayed/<due time>/, so that key order is
// dequeue order.
type layout struct {
	prefix  string // "<name>/"
	seq     string // the sequence counter
	ready   string // items that may be dequeued, by priority then sequence
	claim   string // claim markers, on the claiming consumer's lease
	delayed string // items not yet due, by due time (Unix ns, 19 digits)

	readyEnd, claimEnd, delayedEnd string
}

func newLayout(prefix string) layout {
	l := layout{
		prefix:  prefix,
		seq:     prefix + "seq",
		ready:   prefix + "ready/",
		claim:   prefix + "claim/",
		delayed: prefix + "delayed/",
	}
	l.readyEnd = clientv3.GetPrefixRangeEnd(l.ready)
	l.claimEnd = clientv3.GetPrefixRangeEnd(l.claim)
	l.delayedEnd = clientv3.GetPrefixRangeEnd(l.delayed)
	return l
}

const priorityOffset = 1 << 15

// suffix is an item's identity under every directory of the queue.
func suffix(priority int, seq uint64) string {
	return fmt.Sprintf("%05d/%020d", priority+priorityOffset, seq)
}

// priorityOf returns the priority encoded in an item's suffix.
func priorityOf(sfx string) int {
	p, err := strconv.Atoi(sfx[:min(5, len(sfx))])
	if err != nil {
		return 0
	}
	return p - priorityOffset
}

// delayedKey is where an item due at nb waits until it is promoted.
func (l layout) delayedKey(nb time.Time, sfx string) string {
	return fmt.Sprintf("%s%019d/%s", l.delayed, nb.UnixNano(), sfx)
}

// dueEnd is the end of the range of delayed keys due at or before t.
func (l layout) dueEnd(t time.Time) string {
	return fmt.Sprintf("%s%019d", l.delayed, t.UnixNano()+1)
}

// parseDelayed splits a delayed key into its due time and item suffix.
func (l layout) parseDelayed(key string) (time.Time, string, bool) {
	rest, ok := strings.CutPrefix(key, l.delayed)
	if !ok {
		return time.Time{}, "", false
	}
	ns, sfx, ok := strings.Cut(rest, "/")
	if !ok {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, n), sfx, true
}
