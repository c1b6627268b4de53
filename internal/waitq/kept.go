package waitq

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeepIdle is how long a [Kept] watch stays open, unused, after the wait
// that made it ended. A worker that locks in a loop waits again well within
// it; a handle that is dropped, or that holds longer, gives its watch back
// to etcd after it.
const KeepIdle = time.Second

// Kept is not used by any primitive yet. With it, mutex handles that lock
// in a loop reached 0.50-0.57x the floor with 8 contenders instead of
// 0.46-0.52x. It was unwired while chaos L5 (the etcd leader SIGSTOPped for
// 3 s) was found leaving Locks blocked for 15 s: more often with it (12 of
// 21 runs) than without (6 of 17), but also with session 2's code, before
// Kept existed (2 of 9). One cause was found and fixed (an abandoned Join
// applied after its delete: see AbandonLinger); the rest is not explained,
// so Kept waits for that. Without a Kept, openWatch opens a watch per wait.
//
// Kept holds a handle's last watch open for a while after its wait ended,
// so that the handle's next wait on the same key reuses it instead of
// opening and closing a watch (a request and an answer each way, and a
// watcher set up and torn down on the server and in the client).
//
// That is the common case under contention: a handle's key keeps its name
// from one acquisition to the next, and workers that take a lock in a loop
// fall into a stable order, each behind the same key every time.
//
// A watch reused this way was opened in sync with the store before the key
// it waits for was created (its created revision is below the key's create
// revision), and reports every change after that in order, so it misses no
// deletion of the key; deletions of earlier incarnations of the name are
// skipped by their revision (a reused watch may start at the key's
// create revision itself: a deletion comes after it).
//
// Only a handle's second and later waits keep their watch: a handle made
// for one request waits once, and keeping its watch would only load etcd
// (for a semaphore, whose wait watches the whole line, each kept watch
// would be sent every release under the name). A Kept is for one kind of
// wait: a single key, or (the semaphore's) a prefix, never both. The zero
// value holds nothing and is ready to use; a Kept is safe for concurrent
// use.
type Kept struct {
	mu     sync.Mutex
	waits  int // waits that asked for a watch, up to 2
	key    string
	wch    clientv3.WatchChan
	from   int64 // the watch reports every change after this revision
	cancel context.CancelFunc
	timer  *time.Timer // cancels the watch once idle for KeepIdle
}

// take returns the kept watch if it watches key and reports every change
// after revision rev, and forgets it either way (a watch on another key is
// closed). ok is false when there is none to reuse.
// again reports whether this is the handle's second or later wait, whose
// watch may be kept after it.
func (k *Kept) take(key string, rev int64) (wch clientv3.WatchChan, from int64, cancel context.CancelFunc, ok, again bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.waits = min(k.waits+1, 2)
	again = k.waits > 1
	if k.wch == nil {
		return nil, 0, nil, false, again
	}
	wch, from, cancel = k.wch, k.from, k.cancel
	live := k.timer.Stop() // false: the idle timer has closed it already
	k.wch, k.cancel, k.timer = nil, nil, nil
	if !live || k.key != key || from > rev {
		cancel()
		return nil, 0, nil, false, again
	}
	return wch, from, cancel, true, again
}

// park keeps a watch on key, which reports every change after revision
// from, for the next wait; it is closed after KeepIdle unless taken. A
// watch parked before is closed.
func (k *Kept) park(key string, wch clientv3.WatchChan, from int64, cancel context.CancelFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.wch != nil {
		k.timer.Stop()
		k.cancel()
	}
	k.key, k.wch, k.from, k.cancel = key, wch, from, cancel
	k.timer = time.AfterFunc(KeepIdle, cancel)
}

// Close closes the kept watch, if any.
func (k *Kept) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.wch != nil {
		k.timer.Stop()
		k.cancel()
		k.wch, k.cancel, k.timer = nil, nil, nil
	}
}

// keptWatch is one wait's watch: taken from the waiter's Kept when that
// one can serve the wait, opened in sync with the store otherwise.
type keptWatch struct {
	ch   clientv3.WatchChan
	from int64 // once known: the watch reports every change after it
	// reused: taken from Kept, so its created notification was consumed
	// by an earlier wait.
	reused bool

	w      *Waiter
	key    string
	keep   bool
	cancel context.CancelFunc
	detach func() bool
	parked bool
}

// openWatch returns a watch on key with opts for a wait that must see
// every change after revision rev: the waiter's kept watch if it has one on
// key that does, else a new one (with keep, one that can be kept after the
// wait). The caller must end it with close.
func (w *Waiter) openWatch(ctx context.Context, key string, rev int64, keep bool, opts ...clientv3.OpOption) *keptWatch {
	if keep = keep && w.Keep != nil; keep {
		var kw keptWatch
		kw.ch, kw.from, kw.cancel, kw.reused, keep = w.Keep.take(key, rev)
		if kw.reused {
			kw.w, kw.key, kw.keep = w, key, true
			return &kw
		}
	}
	kw := &keptWatch{w: w, key: key, keep: keep}
	if !keep {
		wctx, cancel := context.WithCancel(ctx)
		kw.cancel, kw.ch = cancel, watch(wctx, w.Session, key, opts...)
		return kw
	}
	// A watch that may be kept must outlive this wait, but until the wait
	// ends it must end with ctx: the client's Watch call itself blocks
	// while the client cannot reach etcd.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	kw.cancel, kw.detach = cancel, context.AfterFunc(ctx, cancel)
	kw.ch = watch(wctx, w.Session, key, opts...)
	return kw
}

// park keeps the watch for the handle's next wait, provided it has
// reported its start (from) and ctx has not ended.
func (kw *keptWatch) park(ctx context.Context) {
	if kw.keep && kw.from > 0 && ctx.Err() == nil && !kw.parked {
		if kw.detach != nil && !kw.detach() {
			return // ctx's end is closing it already
		}
		kw.w.Keep.park(kw.key, kw.ch, kw.from, kw.cancel)
		kw.parked = true
	}
}

// close closes the watch unless it was parked.
func (kw *keptWatch) close() {
	if kw.detach != nil {
		kw.detach()
	}
	if !kw.parked {
		kw.cancel()
	}
}
