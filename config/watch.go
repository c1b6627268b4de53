package config

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watcher keeps the latest good value of a configuration, decoded, up to
// date. It is safe for concurrent use. Make one with [Watch]; it must not
// be copied.
type Watcher[T any] struct {
	cli    *clientv3.Client
	name   string
	decode func([]byte) (T, error)
	o      options

	cur   atomic.Pointer[state[T]]
	stale atomic.Bool
	errc  chan error

	cancel    context.CancelFunc
	done      chan struct{}
	err       error // why the goroutine ended; written before done closes
	closeOnce sync.Once

	mu      sync.Mutex // guards subs, nextSub, changed
	subs    []subscription[T]
	nextSub int
	changed chan struct{} // closed and replaced when a value is applied

	seen int64 // mod revision of the last record examined; goroutine only
}

type state[T any] struct {
	val     T
	version int64
}

type subscription[T any] struct {
	id int
	fn func(old, new T)
}

// Watch reads the value of name, decodes it and keeps it up to date until
// [Watcher.Close], following every later publish from the revision of that
// read (no update between the read and the watch is missed). A value that
// decode or the [WithValidator] validator refuses is never applied: the
// last good value stays and the failure is sent on [Watcher.Errors], as
// is a record that is not [Publish]'s. Versions only increase: a version at
// or below the one applied is skipped, so a relist after etcd's compaction
// applies (and calls subscribers) only if the version changed.
//
// If nothing is published under name yet, Load returns T's zero value and
// Version 0 until the first publish. If the current value is refused
// (decode, validator, or not a record), Watch reports it on
// [Watcher.Errors] and starts from the newest good one of the last 10
// versions in the history, else from the [WithSnapshotFile] file; if
// neither has one, it returns an error wrapping [ErrInvalid]. So Load
// never returns a value that was refused, nor the zero value once
// something is published. ctx bounds only the first read, which
// is retried while etcd is unavailable.
//
// With [WithSnapshotFile], the first read is bounded by [WithStartTimeout]
// too; if it fails (not a refusal by access control) or does not answer
// in that time, and ctx has not ended, Watch starts from the snapshot file
// instead, if it holds a good value for name, with Stale true until etcd
// is read. The file is used at no other time. Watch returns an error when
// the first read fails and there is no usable snapshot.
func Watch[T any](ctx context.Context, cli *clientv3.Client, name string, decode func([]byte) (T, error), opts ...Option) (*Watcher[T], error) {
	checkName(name)
	w := &Watcher[T]{cli: cli, name: name, decode: decode, o: buildOptions(opts),
		errc: make(chan error, 16), done: make(chan struct{}), changed: make(chan struct{})}
	w.cur.Store(&state[T]{})
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if w.o.snapshot != "" {
		rctx, cancel = context.WithTimeout(ctx, w.o.startTimeout)
	}
	var resp *clientv3.GetResponse
	err := retry.Do(rctx, func(ctx context.Context) (err error) {
		resp, err = cli.Get(ctx, currentKey(name))
		return err
	})
	cancel()
	rev := int64(0)
	switch {
	case err == nil:
		rev = resp.Header.Revision
		if len(resp.Kvs) > 0 {
			if cerr := w.consider(resp.Kvs[0]); cerr != nil {
				w.report(cerr)
				if err := w.startFromGood(ctx, cerr); err != nil {
					return nil, fmt.Errorf("config: watch %q: %w", name, err)
				}
			}
		}
	case ctx.Err() != nil || w.o.snapshot == "" || errs.Refused(err):
		return nil, fmt.Errorf("config: watch %q: %w", name, refused(err, name))
	default:
		if serr := w.loadSnapshot(); serr != nil {
			return nil, fmt.Errorf("config: watch %q: etcd: %w; snapshot: %w", name, err, serr)
		}
		w.stale.Store(true)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	w.cancel = wcancel
	go w.run(wctx, follow.New(cli, currentKey(name), rev, follow.Observed(w.o.obs, observe.KindConfig)), rev == 0)
	return w, nil
}

// Load returns the value applied last: the newest good one. It never
// blocks.
func (w *Watcher[T]) Load() T { return w.cur.Load().val }

// Version returns the version of the value Load returns, 0 before any.
func (w *Watcher[T]) Version() int64 { return w.cur.Load().version }

// Stale reports whether the watcher could not read etcd lately, or started
// from the snapshot file and has not read etcd yet: Load may be behind.
func (w *Watcher[T]) Stale() bool { return w.stale.Load() }

// Errors returns a channel of the failures the watcher met: values not
// applied, etcd unreachable, and why it stopped. The sends never block:
// when the channel is full (16) an error is dropped. The watcher closes
// the channel when it stops.
func (w *Watcher[T]) Errors() <-chan error { return w.errc }

// Done returns a channel closed when the watcher has stopped: after Close,
// or when its client was closed or etcd refused the watch.
func (w *Watcher[T]) Done() <-chan struct{} { return w.done }

// Err returns why the watcher stopped: [ErrClosed] after Close,
// [ErrClientClosed] when its client was closed, an error wrapping
// [ErrRefused] when etcd refused the watch; nil while it runs.
func (w *Watcher[T]) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Subscribe registers fn to be called with the previous and the new value
// each time a value is applied, and returns a function that unregisters
// it. Calls come one at a time from the watcher's goroutine, in version
// order; fn must return promptly and must not call Close.
func (w *Watcher[T]) Subscribe(fn func(old, new T)) (unsubscribe func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextSub++
	id := w.nextSub
	w.subs = append(w.subs, subscription[T]{id, fn})
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, s := range w.subs {
			if s.id == id {
				w.subs = append(w.subs[:i:i], w.subs[i+1:]...)
				return
			}
		}
	}
}

// WaitFor blocks until the watcher has applied version or a later one and
// returns nil; it returns ctx's error if ctx ends first, and [Watcher.Err]
// if the watcher stops first.
func (w *Watcher[T]) WaitFor(ctx context.Context, version int64) error {
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if w.Version() >= version {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("config: wait for %q version %d: %w", w.name, version, ctx.Err())
		case <-w.done:
			if w.Version() >= version {
				return nil
			}
			return fmt.Errorf("config: wait for %q version %d: %w", w.name, version, w.err)
		}
	}
}

// Close stops the watcher and waits for its goroutine to end. Load keeps
// returning the last value. Close is idempotent.
func (w *Watcher[T]) Close() {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
	})
}

// report sends err on the errors channel unless it is full.
func (w *Watcher[T]) report(err error) {
	select {
	case w.errc <- err:
	default:
	}
}

// run follows the current key until ctx ends or the watch cannot go on.
// A read of the key (a relist) is needed when the follower asks for one,
// at the start without a read, and after check interval without news,
// which is also how the watcher learns whether etcd is reachable.
func (w *Watcher[T]) run(ctx context.Context, f *follow.Follower, needRead bool) {
	defer close(w.done)
	defer close(w.errc)
	defer f.Close()
	for {
		if needRead && w.read(ctx, f) {
			needRead = false
		}
		nctx, cancel := context.WithTimeout(ctx, w.o.check)
		evs, relist, err := f.Next(nctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			w.err = ErrClosed
			return
		case errors.Is(err, context.DeadlineExceeded):
			needRead = true
			continue
		case err != nil:
			w.err = refused(err, w.name)
			w.report(fmt.Errorf("config: watch %q stopped: %w", w.name, w.err))
			return
		case relist:
			needRead = true
			continue
		}
		w.stale.Store(false)
		for _, ev := range evs {
			if ev.Type == clientv3.EventTypeDelete {
				w.report(fmt.Errorf("config: watch %q: the current key was deleted; keeping version %d", w.name, w.Version()))
				continue
			}
			if err := w.consider(ev.Kv); err != nil {
				w.report(err)
			}
		}
	}
}

// read reads the current key, applies it if new, and tells the follower
// what it has seen. It reports whether etcd answered.
func (w *Watcher[T]) read(ctx context.Context, f *follow.Follower) bool {
	rctx, cancel := context.WithTimeout(ctx, w.o.check)
	defer cancel()
	resp, err := w.cli.Get(rctx, currentKey(w.name))
	if err != nil {
		if ctx.Err() == nil && !w.stale.Swap(true) {
			w.report(fmt.Errorf("config: watch %q: etcd unreachable, keeping version %d: %w", w.name, w.Version(), refused(err, w.name)))
		}
		return false
	}
	w.stale.Store(false)
	f.Reset(resp.Header.Revision)
	if len(resp.Kvs) > 0 {
		if err := w.consider(resp.Kvs[0]); err != nil {
			w.report(err)
		}
	}
	return true
}

// consider applies the record in kv if it is new, newer than the value
// applied, decodes and passes the validator; it returns why not otherwise
// (nil for a record already seen or older than the value applied).
func (w *Watcher[T]) consider(kv *mvccpb.KeyValue) error {
	if kv.ModRevision <= w.seen {
		return nil
	}
	w.seen = kv.ModRevision
	rec, err := decodeRecord(string(kv.Key), kv.Value, kv.ModRevision)
	if err == nil && rec.Name != w.name {
		err = fmt.Errorf("%w: key %q holds a record of %q", ErrMalformed, kv.Key, rec.Name)
	}
	if err != nil {
		return fmt.Errorf("config: watch %q: keeping version %d: %w", w.name, w.Version(), err)
	}
	if rec.Version <= w.Version() {
		return nil
	}
	return w.apply(rec, true)
}

// apply decodes and validates rec and, if both pass, makes it the value,
// tells the subscribers and writes the snapshot file when save is set.
func (w *Watcher[T]) apply(rec Value, save bool) error {
	val, err := w.decode(rec.Data)
	if err == nil && w.o.validate != nil {
		err = w.o.validate(rec.Data)
	}
	if err != nil {
		return fmt.Errorf("config: watch %q: version %d not applied, keeping version %d: %w: %w", w.name, rec.Version, w.Version(), ErrInvalid, err)
	}
	old := w.cur.Swap(&state[T]{val: val, version: rec.Version})
	w.mu.Lock()
	subs := append([]subscription[T](nil), w.subs...)
	ch := w.changed
	w.changed = make(chan struct{})
	w.mu.Unlock()
	close(ch)
	for _, s := range subs {
		s.fn(old.val, val)
	}
	if save && w.o.snapshot != "" {
		if err := writeSnapshot(w.o.snapshot, encode(rec)); err != nil {
			return fmt.Errorf("config: watch %q: snapshot: %w", w.name, err)
		}
	}
	return nil
}
