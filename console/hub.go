package console

import (
	"context"
	"sync"

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
	done   chan struct{}
}

// subscribe returns a channel that receives a value (coalesced) after each
// change under prefix made after subscribe returns, and a function that
// stops the subscription; the channel is never closed. It waits (until ctx
// ends) for etcd to have created the watch, so no change is missed.
func (h *hub) subscribe(ctx context.Context, prefix string) (<-chan struct{}, func()) {
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
	return ch, func() {
		h.mu.Lock()
		delete(f.subs, ch)
		last := len(f.subs) == 0 && h.feeds[prefix] == f
		if last {
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
// change. A watch that etcd ends (refused, compacted, client closed)
// simply stops: the pages keep what they show, and a reload starts again.
func (h *hub) run(ctx context.Context, prefix string, f *feed) {
	defer close(f.done)
	created := false
	defer func() {
		if !created {
			close(f.ready)
		}
	}()
	key, opts := prefix, []clientv3.OpOption{clientv3.WithPrefix()}
	if prefix == "" {
		key, opts = "\x00", []clientv3.OpOption{clientv3.WithFromKey()}
	}
	opts = append(opts, clientv3.WithCreatedNotify())
	wch := h.cli.Watch(clientv3.WithRequireLeader(ctx), key, opts...)
	for resp := range wch {
		if resp.Created && !created {
			created = true
			close(f.ready)
			continue
		}
		if resp.Err() != nil {
			// Drain until the client closes the channel, which it does
			// after a canceled response.
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
