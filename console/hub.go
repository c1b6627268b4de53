package console

import (
	"context"
	"sync"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// hub shares one etcd watch per prefix among the open pages. A watch
// starts with the first page that listens to its prefix and stops, and is
// waited for, when the last one leaves, so no goroutine outlives the pages.
type hub struct {
	cli   *clientv3.Client
	mu    sync.Mutex // guards feeds and each feed's subs
	feeds map[string]*feed
}

type feed struct {
	subs   map[chan struct{}]struct{}
	cancel context.CancelFunc
	ready  chan struct{} // closed once etcd created the watch, or it ended
	done   chan struct{} // closed when run returns; err is set then
	err    error         // why the feed ended on its own, nil if stopped
}

// subscribe returns a channel that receives a value (coalesced) after each
// change under prefix made after subscribe returns, the feed behind it,
// whose done channel closes if it ends on its own (etcd refused the watch,
// the client closed), and a function that stops the subscription. The
// change channel is never closed. subscribe waits (until ctx ends) for
// etcd to have created the watch, so no change is missed.
func (h *hub) subscribe(ctx context.Context, prefix string) (<-chan struct{}, *feed, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	f, ok := h.feeds[prefix]
	if !ok {
		wctx, cancel := context.WithCancel(context.Background())
		f = &feed{subs: map[chan struct{}]struct{}{}, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
		h.feeds[prefix] = f
		go h.run(wctx, prefix, f)
	}
	f.subs[ch] = struct{}{}
	h.mu.Unlock()
	select {
	case <-f.ready:
	case <-ctx.Done():
	}
	return ch, f, func() {
		h.mu.Lock()
		delete(f.subs, ch)
		last := len(f.subs) == 0
		if last && h.feeds[prefix] == f {
			delete(h.feeds, prefix)
		}
		h.mu.Unlock()
		if last {
			f.cancel()
			<-f.done
		}
	}
}

// run follows prefix until ctx ends, telling f's subscribers of each
// change. The follower opens a broken watch again (a member lost its
// leader or restarted) from where it stopped; a change that may have been
// missed (a compaction) is told as a change. When etcd refuses the watch
// or the client closes, run takes the feed out of the hub, so that the
// next page starts another, and closes done with err set.
func (h *hub) run(ctx context.Context, prefix string, f *feed) {
	fl := follow.New(h.cli, prefix, 0, follow.WithPrefix())
	created := false
	defer func() {
		fl.Close()
		if !created {
			close(f.ready)
		}
		close(f.done)
	}()
	for {
		evs, relist, err := fl.Next(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				h.mu.Lock()
				f.err = err
				if h.feeds[prefix] == f {
					delete(h.feeds, prefix)
				}
				h.mu.Unlock()
			}
			return
		case relist && !created:
			// The first watch is in place: changes after it are told.
			created = true
			fl.Reset(fl.Started())
			close(f.ready)
			continue
		case relist:
			fl.Reset(fl.Started())
		case len(evs) == 0:
			continue
		}
		h.mu.Lock()
		for ch := range f.subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		h.mu.Unlock()
	}
}

// refused reports, once f's done channel is closed, whether f ended
// because etcd refused its watch, which following again as the same user
// cannot mend.
func (f *feed) refused() bool { return errs.Refused(f.err) }
