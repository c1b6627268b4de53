package follow_test

import (
	"sync"

	"github.com/coordkit/coordkit/observe"
)

// restarts counts the watch restarts a follower reports, by kind, key and
// reason.
type restarts struct {
	mu   sync.Mutex
	seen map[observe.WatchRestart]int // with Err cleared
}

func (r *restarts) observer() *observe.Observer {
	return &observe.Observer{WatchRestarted: func(e observe.WatchRestart) {
		e.Err = nil
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.seen == nil {
			r.seen = map[observe.WatchRestart]int{}
		}
		r.seen[e]++
	}}
}

func (r *restarts) count(kind, name, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[observe.WatchRestart{Kind: kind, Name: name, Reason: reason}]
}
