package session

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A janitor deletes, in the background, the keys that waiters of one
// session could not delete themselves: a waiter cut off from etcd must
// return when its context or lease says so, not wait for the network, yet a
// key it leaves behind would stay in line for as long as the session lives
// (a session that recovers keeps renewing it) and could end up holding the
// lock with nobody behind it. The janitor retries with backoff until the
// deletes succeed or the state ends (a session's end deletes the keys
// anyway). Its goroutine runs only while it has keys to delete.
type janitor struct {
	st   *State
	wake chan struct{}

	// mu guards pending, watch, busy and running. It is not held during
	// deletes, so that a Join never waits for the delete of another key:
	// Forget waits, on idle, only while its own key's delete is under way.
	mu      sync.Mutex
	idle    *sync.Cond       // on mu; broadcast when a delete ends
	busy    string           // the key being deleted, "" when none
	running bool             // the goroutine runs
	pending map[string]int64 // key → create revision to guard by; 0: read it first
	// watch holds keys that may still be written late: until its
	// deadline, a key is deleted again whenever it shows up.
	watch map[string]time.Time
}

// janitorAttempt bounds one delete, so that a Join waiting in Forget waits
// at most that long.
const janitorAttempt = 2 * time.Second

func (j *janitor) init(st *State) {
	j.st = st
	j.wake = make(chan struct{}, 1)
	j.pending = map[string]int64{}
	j.watch = map[string]time.Time{}
	j.idle = sync.NewCond(&j.mu)
}

// DeferDelete has the session's janitor delete key, guarded by its create
// revision rev (read first when rev is 0). Once the state has ended it does
// nothing: the key goes with the session's lease.
func (st *State) DeferDelete(key string, rev int64) {
	st.DeferDeleteUntil(key, rev, time.Time{})
}

// DeferDeleteUntil is DeferDelete that, until the deadline, also deletes
// key again each time it shows up (any incarnation: rev must be 0), for a
// key whose write may still reach etcd late.
func (st *State) DeferDeleteUntil(key string, rev int64, until time.Time) {
	j := &st.jan
	j.mu.Lock()
	j.pending[key] = rev
	if !until.IsZero() {
		j.watch[key] = until
	}
	if !j.running {
		st.mu.Lock()
		j.running = st.goLocked(j.run)
		st.mu.Unlock()
	}
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Forget drops key from the janitor, after any delete of it that is under
// way. A new Join of the key calls it first: from then on the key's fate is
// the joiner's, and an unguarded delete must not hit the new key.
func (st *State) Forget(key string) {
	j := &st.jan
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
			j.mu.Lock()
			if len(j.pending) == 0 {
				j.running = false
				j.mu.Unlock()
				return
			}
			j.mu.Unlock()
			b.Reset()
			continue
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-j.st.s.Done():
		case <-j.st.life.Done():
		case <-j.wake:
			t.Stop()
			continue
		case <-t.C:
			continue
		}
		// The session's end takes its keys with it; a closed state
		// leaves them to the lease.
		t.Stop()
		j.mu.Lock()
		j.running = false
		j.mu.Unlock()
		return
	}
}

// sweep tries every pending delete once and reports whether none is left.
func (j *janitor) sweep() bool {
	j.mu.Lock()
	keys := slices.Collect(maps.Keys(j.pending))
	j.mu.Unlock()
	cli := j.st.s.Client()
	for _, key := range keys {
		j.mu.Lock()
		rev, ok := j.pending[key]
		if !ok { // forgotten meanwhile: a Join has it now
			j.mu.Unlock()
			continue
		}
		j.busy = key
		j.mu.Unlock()
		ctx, cancel := context.WithTimeout(j.st.life, janitorAttempt)
		err := deleteIncarnation(ctx, cli, key, rev)
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

// deleteIncarnation deletes key if its create revision is rev. With rev 0
// (unknown), it first reads the key's create revision and deletes that
// incarnation: never an unguarded delete, which could arrive late and hit
// a newer key of the same name.
func deleteIncarnation(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	if rev == 0 {
		resp, err := cli.Get(ctx, key, clientv3.WithKeysOnly())
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		rev = resp.Kvs[0].CreateRevision
	}
	_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	return err
}
