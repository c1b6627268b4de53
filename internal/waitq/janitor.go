package waitq

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// A janitor deletes, in the background, the keys that waiters of one
// session could not delete themselves: a waiter cut off from etcd must
// return when its context or lease says so, not wait for the network, yet a
// key it leaves behind would stay in line for as long as the session lives
// (a session that recovers keeps renewing it) and could end up holding the
// lock with nobody behind it. The janitor retries with backoff until the
// deletes succeed or the session ends (which deletes the keys anyway).
//
// Janitors are kept per session in a registry, like lease trackers: a
// janitor's goroutine runs only while it has keys to delete and its session
// lives, and removes itself from the registry when it stops.
type janitor struct {
	s    *concurrency.Session
	wake chan struct{}

	// mu guards pending, watch and busy. It is not held during deletes, so
	// that a Join never waits for the delete of another key: forget waits,
	// on idle, only while its own key's delete is under way.
	mu      sync.Mutex
	idle    *sync.Cond       // on mu; broadcast when a delete ends
	busy    string           // the key being deleted, "" when none
	pending map[string]int64 // key → create revision to guard by; 0: read it first
	// watch holds keys of abandoned Joins, which may still be written late
	// (see AbandonLinger): until its deadline, a key is deleted again
	// whenever it shows up.
	watch map[string]time.Time
}

// AbandonLinger is how long the janitor keeps deleting the key of an
// abandoned Join. A Join whose request was cut short by its context may
// still be applied afterwards: a request caught by a paused or failing
// leader is applied when consensus resumes, possibly after the delete that
// was meant to undo it. The key would then stay in line, held up by a
// session that lives on, and block everyone behind it (chaos L5 found
// this). Seconds after the request ended, such a request has been applied
// or dropped.
const AbandonLinger = 30 * time.Second

var janitors = struct {
	sync.Mutex
	m map[*concurrency.Session]*janitor
}{m: map[*concurrency.Session]*janitor{}}

// janitorAttempt bounds one delete, so that a Join waiting in forget waits
// at most that long.
const janitorAttempt = 2 * time.Second

// deferDelete has the session's janitor delete key, guarded by its create
// revision rev (read first when rev is 0).
func deferDelete(s *concurrency.Session, key string, rev int64) {
	deferDeleteUntil(s, key, rev, time.Time{})
}

// deferDeleteUntil is deferDelete that, until the deadline, also deletes
// key again each time it shows up (any incarnation: rev must be 0).
func deferDeleteUntil(s *concurrency.Session, key string, rev int64, until time.Time) {
	janitors.Lock()
	defer janitors.Unlock()
	j := janitors.m[s]
	if j == nil {
		j = &janitor{s: s, wake: make(chan struct{}, 1), pending: map[string]int64{}, watch: map[string]time.Time{}}
		j.idle = sync.NewCond(&j.mu)
		janitors.m[s] = j
		go j.run()
	}
	j.mu.Lock()
	j.pending[key] = rev
	if !until.IsZero() {
		j.watch[key] = until
	}
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// forget drops key from its session's janitor, after any delete of it that
// is under way. A new Join of the key calls it first: from then on the
// key's fate is the joiner's, and an unguarded delete must not hit the new
// key.
func forget(s *concurrency.Session, key string) {
	janitors.Lock()
	j := janitors.m[s]
	janitors.Unlock()
	if j == nil {
		return
	}
	j.mu.Lock()
	delete(j.pending, key)
	delete(j.watch, key)
	// A delete of the key under way may have read its create revision
	// already; once it ends, no sweep looks at the key again.
	for j.busy == key {
		j.idle.Wait()
	}
	j.mu.Unlock()
}

func (j *janitor) run() {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	for {
		if j.sweep() {
			janitors.Lock()
			j.mu.Lock()
			empty := len(j.pending) == 0
			if empty {
				delete(janitors.m, j.s)
			}
			j.mu.Unlock()
			janitors.Unlock()
			if empty {
				return
			}
			b.Reset()
			continue
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-j.s.Done():
			// The session's end takes its keys with it.
			t.Stop()
			janitors.Lock()
			if janitors.m[j.s] == j {
				delete(janitors.m, j.s)
			}
			janitors.Unlock()
			return
		case <-j.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sweep tries every pending delete once and reports whether none is left.
func (j *janitor) sweep() bool {
	j.mu.Lock()
	keys := slices.Collect(maps.Keys(j.pending))
	j.mu.Unlock()
	for _, key := range keys {
		j.mu.Lock()
		rev, ok := j.pending[key]
		if !ok { // forgotten meanwhile: a Join has it now
			j.mu.Unlock()
			continue
		}
		j.busy = key
		j.mu.Unlock()
		ctx, cancel := context.WithTimeout(j.s.Client().Ctx(), janitorAttempt)
		err := deleteIncarnation(ctx, j.s.Client(), key, rev)
		cancel()
		j.mu.Lock()
		j.busy = ""
		j.idle.Broadcast()
		// Unless forgotten, or handed over again with another revision,
		// during the delete.
		if cur, ok := j.pending[key]; ok && cur == rev && err == nil && time.Now().After(j.watch[key]) {
			delete(j.pending, key)
			delete(j.watch, key)
		}
		j.mu.Unlock()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending) == 0
}
