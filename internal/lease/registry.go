package lease

import (
	"sync"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// registry shares one tracker among all the holds on a session. It is a
// cache, not state a user can see: each tracker's goroutine belongs to its
// session and ends when the session does (closed, expired or its client
// closed), removing its entry. Keeping the tracker for the session's life,
// rather than per hold, means only the first hold on a session waits for a
// probe.
var registry = struct {
	sync.Mutex
	m map[*concurrency.Session]*Tracker
}{m: map[*concurrency.Session]*Tracker{}}

// Watch returns the tracker of s's lease, starting it on first use.
func Watch(s *concurrency.Session) *Tracker {
	registry.Lock()
	defer registry.Unlock()
	t := registry.m[s]
	if t == nil {
		var self *Tracker
		t = Start(Config{
			Probe: ProbeSession(s.Client(), s.Lease()),
			Done:  s.Done(),
			OnExit: func() {
				registry.Lock()
				if registry.m[s] == self {
					delete(registry.m, s)
				}
				registry.Unlock()
			},
		})
		self = t
		registry.m[s] = t
	}
	return t
}
