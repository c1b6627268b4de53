package session

import (
	"context"

	"github.com/coordkit/coordkit/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeepStream starts the session's stream keeper, watching the key idle,
// unless it runs already; the first caller's key is the one kept.
//
// A waiter opens a watch for each wait and closes it when the wait ends.
// The etcd client shares one gRPC stream among the watches made with the
// same metadata, and tears the stream down when its last watch closes: a
// session that waits, holds, then waits again would open a new stream (and
// the server two goroutines for it) for every wait. The keeper holds one
// idle watch, made with the same metadata as the waits
// (clientv3.WithRequireLeader), which keeps the stream open for as long as
// the state lives. idle must lie under a name the caller was given: a user
// whom etcd's RBAC allows only that name's prefix may watch it, where a
// watch anywhere else would be refused (and tried again, in vain, for the
// life of the session).
func (st *State) KeepStream(idle string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.keeping {
		return
	}
	st.keeping = st.goLocked(func() { st.keep(idle) })
}

func (st *State) keep(idle string) {
	// The watch ends with the keeper, whichever way it returns.
	ctx, cancel := context.WithCancel(st.life)
	defer cancel()
	pace := retry.New()
	for {
		wch := st.s.Client().Watch(clientv3.WithRequireLeader(ctx), idle)
	drain:
		for {
			select {
			case <-st.s.Done():
				return
			case <-ctx.Done():
				return
			case _, open := <-wch:
				if !open {
					break drain
				}
				pace.Reset()
			}
		}
		// The watch ended (the member lost its leader, or the client is
		// closing): open it again, without hammering a failing member.
		if pace.PauseOr(ctx, st.s.Done(), func() error { return context.Canceled }) != nil {
			return
		}
	}
}
