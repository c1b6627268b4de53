// Package session keeps what coordkit shares among all the handles on one
// etcd session: the lease tracker, the janitor that deletes the keys
// waiters could not delete themselves, and the keeper of the session's
// watch stream. One [State] owns them and every goroutine they run; it ends
// when the session does (closed, expired, or its client closed), or at
// [State.Close], and [State.Wait] returns once all of them have returned.
package session

import (
	"context"
	"sync"

	"github.com/coordkit/coordkit/internal/lease"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// registry finds a session's state. It is the one package-level map in
// coordkit, and unavoidable: etcd's concurrency.Session carries no value of
// its caller's, yet every handle on a session must share one tracker (only
// the session's first hold waits for a lease probe), one janitor and one
// kept stream. An entry lives exactly as long as its State: the State
// removes it once its goroutines have all returned.
var registry = struct {
	sync.Mutex
	m map[*concurrency.Session]*State
}{m: map[*concurrency.Session]*State{}}

// State is what coordkit keeps for one session. Its methods are safe for
// concurrent use.
type State struct {
	s *concurrency.Session
	// life is the parent of the requests the state's goroutines make: the
	// client's context, cancelled also when the state ends.
	life    context.Context
	endLife context.CancelFunc
	closing chan struct{} // closed by Close
	close   sync.Once
	done    chan struct{}  // closed when the state has ended and every goroutine returned
	wg      sync.WaitGroup // the tracker's, janitor's and keeper's goroutines

	jan janitor

	mu      sync.Mutex // guards ended, tracker, keeping
	ended   bool       // no goroutine may start any more
	tracker *lease.Tracker
	keeping bool // the keeper runs or ran
}

// Of returns s's state, starting it (and the lease tracker) on the
// session's first use. A state that has ended is never returned: a later
// call on an ended session gets a new state, which ends at once.
func Of(s *concurrency.Session) *State {
	registry.Lock()
	defer registry.Unlock()
	st := registry.m[s]
	if st == nil {
		st = start(s)
		registry.m[s] = st
	}
	return st
}

// Lookup returns s's state if it has one that has not finished ending, and
// nil otherwise. Unlike [Of] it starts nothing: it is for waiting on a
// session's state after closing the session.
func Lookup(s *concurrency.Session) *State {
	registry.Lock()
	defer registry.Unlock()
	return registry.m[s]
}

func start(s *concurrency.Session) *State {
	st := &State{s: s, closing: make(chan struct{}), done: make(chan struct{})}
	st.life, st.endLife = context.WithCancel(s.Client().Ctx())
	st.jan.init(st)
	st.tracker = st.startTracker()
	go st.supervise()
	return st
}

// startTracker starts a tracker of the session's lease in the state's
// WaitGroup. Call it with mu held (or before the state is shared).
func (st *State) startTracker() *lease.Tracker {
	return lease.Start(lease.Config{
		Probe: lease.ProbeSession(st.s.Client(), st.s.Lease()),
		Done:  st.s.Done(),
		Go:    st.wg.Go,
	})
}

// supervise ends the state when the session ends or Close is called, waits
// for every goroutine and removes the state from the registry. It is the
// state's own goroutine, awaited through done.
func (st *State) supervise() {
	defer close(st.done)
	var closed bool
	select {
	case <-st.s.Done():
		// The tracker sees Done too and records the session as expired:
		// stopping it here could keep holds from learning why they ended.
	case <-st.closing:
		closed = true
	}
	st.mu.Lock()
	st.ended = true
	tr := st.tracker
	st.mu.Unlock()
	st.endLife()
	if closed {
		tr.Stop()
	}
	st.wg.Wait()
	registry.Lock()
	if registry.m[st.s] == st {
		delete(registry.m, st.s)
	}
	registry.Unlock()
}

// Tracker returns the tracker of the session's lease. A tracker that gave
// up on the lease (its deadline passed with no answer) is replaced by a new
// one for the next caller, as long as the session lives: a session that
// recovers may hold again once a probe confirms its lease.
func (st *State) Tracker() *lease.Tracker {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		select {
		case <-st.tracker.Exited():
			st.tracker = st.startTracker()
		default:
		}
	}
	return st.tracker
}

// goLocked runs f in the state's WaitGroup unless the state has ended, and
// reports whether it did. Call it with mu held: a goroutine is never added
// once supervise has started waiting.
func (st *State) goLocked(f func()) bool {
	if st.ended {
		return false
	}
	st.wg.Go(f)
	return true
}

// Close ends the state: it stops the tracker, the janitor (keys it had yet
// to delete are left to the session's lease) and the keeper, and returns
// once their goroutines have. Holds that use the tracker learn nothing more
// about the lease. Call it after the session's last use.
func (st *State) Close() {
	st.close.Do(func() { close(st.closing) })
	st.Wait()
}

// Wait returns once the state has ended (its session ended, or Close was
// called) and all its goroutines have returned.
func (st *State) Wait() { <-st.done }

// Done is closed when Wait would return.
func (st *State) Done() <-chan struct{} { return st.done }
