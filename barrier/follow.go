package barrier

import (
	"context"

	"github.com/coordkit/coordkit/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// follower follows the changes to a key or a prefix after revision last,
// across broken watches. A watch that breaks (compaction, no leader, a
// closed channel) is never taken as news: it is re-established from where
// it stopped, or, if that revision was compacted, the caller is told to
// read again.
type follower struct {
	cli    *clientv3.Client
	key    string
	prefix bool
	// last is the revision up to which every change is known to the caller:
	// set it after each read, it moves with each event returned.
	last int64

	ch     clientv3.WatchChan
	cancel context.CancelFunc
	resume bool         // the next watch starts at last+1 rather than in sync
	pace   *retry.Pacer // spaces out re-opening a broken watch
}

// next returns the next changes after f.last. It returns resync=true
// (and no events) when changes may have been missed: the caller must read
// again and set f.last to the read's revision. It returns an error only when
// ctx is done.
func (f *follower) next(ctx context.Context) (evs []*clientv3.Event, resync bool, err error) {
	for {
		if f.ch == nil {
			f.open(ctx)
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case wr, ok := <-f.ch:
			switch {
			case ok && wr.CompactRevision > 0:
				// What we would resume from is gone: read the present.
				f.stop()
				f.resume = false
				return nil, true, nil
			case !ok || wr.Err() != nil || wr.Canceled:
				f.stop()
				f.resume = true
				if err := f.pacer().Pause(ctx); err != nil {
					return nil, false, err
				}
				continue
			case wr.Created:
				f.pacer().Reset()
				if !f.resume && wr.Header.Revision > f.last {
					// The store moved between the caller's read and the
					// watch: the watch covers only what came after.
					return nil, true, nil
				}
				continue
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision > f.last {
					evs = append(evs, ev)
				}
			}
			if len(evs) > 0 {
				f.last = evs[len(evs)-1].Kv.ModRevision
				return evs, false, nil
			}
		}
	}
}

// open starts a watch: in sync with the store (no start revision, so that
// changes are delivered as they commit, not by etcd's 100 ms catch-up loop)
// unless it resumes after a broken watch.
func (f *follower) open(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if f.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if f.resume {
		opts = append(opts, clientv3.WithRev(f.last+1))
	}
	f.cancel, f.ch = cancel, f.cli.Watch(wctx, f.key, opts...)
}

// stop ends the current watch, if any.
func (f *follower) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.cancel, f.ch = nil, nil
}

// pacer returns the follower's pacer, made on first use.
func (f *follower) pacer() *retry.Pacer {
	if f.pace == nil {
		f.pace = retry.New()
	}
	return f.pace
}
