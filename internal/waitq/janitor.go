package waitq

import (
	"time"

	"github.com/coordkit/coordkit/internal/session"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// AbandonLinger is how long the session's janitor keeps deleting the key of
// an abandoned Join. A Join whose request was cut short by its context may
// still be applied afterwards: a request caught by a paused or failing
// leader is applied when consensus resumes, possibly after the delete that
// was meant to undo it. The key would then stay in line, held up by a
// session that lives on, and block everyone behind it (chaos L5 found
// this). Seconds after the request ended, such a request has been applied
// or dropped.
const AbandonLinger = 30 * time.Second

// deferDelete has the session's janitor ([session.State.DeferDelete])
// delete key, guarded by its create revision rev (read first when rev is 0).
func deferDelete(s *concurrency.Session, key string, rev int64) {
	session.Of(s).DeferDelete(key, rev)
}

// deferDeleteUntil is deferDelete that, until the deadline, also deletes
// key again each time it shows up (any incarnation: rev must be 0).
func deferDeleteUntil(s *concurrency.Session, key string, rev int64, until time.Time) {
	session.Of(s).DeferDeleteUntil(key, rev, until)
}

// forget drops key from its session's janitor, after any delete of it that
// is under way ([session.State.Forget]). A new Join of the key calls it
// first: from then on the key's fate is the joiner's.
func forget(s *concurrency.Session, key string) {
	session.Of(s).Forget(key)
}
