package waitq

import (
	"context"
	"sync"

	"github.com/coordkit/coordkit/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// A waiter opens a watch for each wait and closes it when the wait ends.
// The etcd client shares one gRPC stream among the watches made with the
// same metadata, and tears the stream down when its last watch closes: a
// session that waits, holds, then waits again would open a new stream (and
// the server two goroutines for it) for every wait. Under contention that
// was about a fifth of all the CPU a lock used, client and server, and the
// contended lock ran 17-35% faster once the stream stayed open.
//
// So the first wait of a session starts a keeper: one idle watch, on a key
// nobody writes, made with the same metadata as the waits
// (clientv3.WithRequireLeader), which keeps the stream open for as long as
// the session lives. That key lies under the name of the primitive whose
// wait started the keeper: a user whom etcd's RBAC allows only that name's
// prefix may watch it, where a watch anywhere else would be refused (and
// tried again, in vain, for the life of the session). Keepers are kept per session in a registry, like
// janitors and lease trackers; a keeper's goroutine ends with its session
// (closed, expired, or its client closed) and removes its entry.
var keepers = struct {
	sync.Mutex
	m map[*concurrency.Session]bool
}{m: map[*concurrency.Session]bool{}}

// idleSuffix, after a primitive's prefix, is the key a keeper watches.
// Nothing writes it (no waiter key starts with a NUL byte); were something
// to, the keeper would only drain the events.
const idleSuffix = "\x00coordkit-idle-watch"

// watch opens a watch for waiter w, with the metadata every wait uses, on
// its session's kept stream.
func watch(ctx context.Context, w *Waiter, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	keepStream(w.session, w.prefix+idleSuffix)
	return w.client().Watch(clientv3.WithRequireLeader(ctx), key, opts...)
}

// keepStream starts s's keeper, watching idle, unless it runs already.
func keepStream(s *concurrency.Session, idle string) {
	keepers.Lock()
	defer keepers.Unlock()
	if keepers.m[s] {
		return
	}
	keepers.m[s] = true
	go keep(s, idle)
}

func keep(s *concurrency.Session, idle string) {
	defer func() {
		keepers.Lock()
		delete(keepers.m, s)
		keepers.Unlock()
	}()
	// The client's context ends when the client is closed; the session's
	// Done channel when the session ends for any reason.
	ctx, cancel := context.WithCancel(s.Client().Ctx())
	defer cancel()
	pace := retry.New()
	for {
		wch := s.Client().Watch(clientv3.WithRequireLeader(ctx), idle)
	drain:
		for {
			select {
			case <-s.Done():
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
		if pace.PauseOr(ctx, s.Done(), func() error { return context.Canceled }) != nil {
			return
		}
	}
}
