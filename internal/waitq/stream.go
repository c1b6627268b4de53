package waitq

import (
	"context"

	"github.com/coordkit/coordkit/internal/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// idleSuffix, after a primitive's prefix, is the key the session's stream
// keeper watches ([session.State.KeepStream]): under the name the user
// gave, so that a user whom etcd's RBAC allows only that prefix may watch
// it. Nothing writes it (no waiter key starts with a NUL byte); were
// something to, the keeper would only drain the events.
const idleSuffix = "\x00coordkit-idle-watch"

// watch opens a watch for waiter w, with the metadata every wait uses, on
// its session's kept stream.
func watch(ctx context.Context, w *Waiter, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	session.Of(w.session).KeepStream(w.prefix + idleSuffix)
	return w.client().Watch(clientv3.WithRequireLeader(ctx), key, opts...)
}
