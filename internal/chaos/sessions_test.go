//go:build chaos

package chaos_test

import (
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// sessions keeps one live session on a client for a loop that outlives
// sessions, as a long-running process does: next returns the current
// session, or a new one once it has expired. It is not safe for concurrent
// use: one loop owns it.
type sessions struct {
	cli  *clientv3.Client
	opts []concurrency.SessionOption
	s    *concurrency.Session
}

func newSessions(cli *clientv3.Client, opts ...concurrency.SessionOption) *sessions {
	return &sessions{cli: cli, opts: opts}
}

// next returns a live session and whether it is a new one, or an error if
// none could be made (the caller pauses and tries again).
func (ss *sessions) next() (*concurrency.Session, bool, error) {
	if ss.s != nil {
		select {
		case <-ss.s.Done():
			ss.s.Close()
			ss.s = nil
		default:
			return ss.s, false, nil
		}
	}
	s, err := concurrency.NewSession(ss.cli, ss.opts...)
	if err != nil {
		return nil, false, err
	}
	ss.s = s
	return s, true, nil
}

// close closes the last session, if any.
func (ss *sessions) close() {
	if ss.s != nil {
		ss.s.Close()
	}
}
