package registry

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Snapshot is a service's instances as a [View] last saw them. It is
// shared: do not modify it.
type Snapshot struct {
	// Instances are the readable instances, sorted by ID.
	Instances []Instance
	// Skipped are the keys under the service whose value is not an
	// instance (not JSON, no Addr, ...), sorted.
	Skipped []string
	// Rev is the revision of etcd's store that the snapshot reflects.
	Rev int64
	// Stale is true while the View cannot reach etcd: the instances are
	// the last ones it saw.
	Stale bool
}

// View follows the instances of one service: see [Watch]. It is safe for
// concurrent use and must not be copied.
type View struct {
	cli     *clientv3.Client
	service string
	prefix  string
	probe   time.Duration
	stop    context.CancelFunc
	done    chan struct{} // closed when run returns
	ready   chan struct{} // closed after the first read
	changes chan struct{} // holds one pending notification

	mu    sync.Mutex          // guards the fields below
	set   map[string]Instance // by key
	bad   map[string]bool     // keys whose value is not an instance
	snap  Snapshot            // rebuilt when set, bad or stale change
	dirty bool                // snap is out of date
	err   error               // why run ended
}

// Watch returns a View of service's instances (those under service + "/",
// registered by [Register] or by etcd's endpoints.Manager) and starts
// following them in a goroutine that [View.Close] stops. It does no I/O
// itself: [View.Ready] says when the first set has been read.
//
// The View rides out what etcd does: a broken watch is resumed with
// nothing missed; a compaction costs one read and sends no notification
// unless the set changed; while etcd cannot be reached (checked by a small
// read after [WithProbeInterval] without news) the View keeps its last set
// and reports it [Snapshot.Stale], and never replaces it with an empty one
// because a read failed. It ends only on Close, a closed client
// ([ErrClosed]) or etcd's refusal (an error satisfying errs.Refused).
func Watch(cli *clientv3.Client, service string, opts ...ViewOption) *View {
	o := viewOptions{probe: 2 * time.Second}
	for _, opt := range opts {
		opt.applyView(&o)
	}
	service = strings.TrimSuffix(service, "/")
	if service == "" {
		panic("registry: empty service")
	}
	ctx, stop := context.WithCancel(context.Background())
	v := &View{
		cli: cli, service: service, prefix: service + "/", probe: o.probe, stop: stop,
		done: make(chan struct{}), ready: make(chan struct{}), changes: make(chan struct{}, 1),
		set: map[string]Instance{}, bad: map[string]bool{},
	}
	go v.run(ctx)
	return v
}

// Snapshot returns the instances as the View last saw them.
func (v *View) Snapshot() Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.dirty {
		v.snap.Instances = make([]Instance, 0, len(v.set))
		for _, in := range v.set {
			v.snap.Instances = append(v.snap.Instances, in)
		}
		slices.SortFunc(v.snap.Instances, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
		v.snap.Skipped = make([]string, 0, len(v.bad))
		for k := range v.bad {
			v.snap.Skipped = append(v.snap.Skipped, k)
		}
		slices.Sort(v.snap.Skipped)
		v.dirty = false
	}
	return v.snap
}

// Changes returns a channel that receives a value when what Snapshot
// returns has changed (the instances, the skipped keys or Stale; not the
// revision alone). Notifications are coalesced: a reader that falls behind
// gets one for all it missed, and then reads the latest Snapshot. The View
// closes the channel when it ends.
func (v *View) Changes() <-chan struct{} { return v.changes }

// Ready returns a channel that the View closes once it has read the set
// for the first time, so that an empty Snapshot then means no instances.
func (v *View) Ready() <-chan struct{} { return v.ready }

// Stale reports whether the View cannot reach etcd now.
func (v *View) Stale() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap.Stale
}

// Done returns a channel that the View closes when it stops following:
// after Close, a closed client or etcd's refusal. [View.Err] says why.
func (v *View) Done() <-chan struct{} { return v.done }

// Err returns nil while the View follows etcd and after Close, and why it
// stopped otherwise: [ErrClosed], or etcd's refusal.
func (v *View) Err() error {
	select {
	case <-v.done:
	default:
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Close stops the View and waits for its goroutine. Snapshot keeps
// returning the last set. Close may be called more than once.
func (v *View) Close() {
	v.stop()
	<-v.done
}

// run follows the prefix until ctx ends or it cannot go on.
func (v *View) run(ctx context.Context) {
	defer close(v.done)
	defer close(v.changes)
	f := follow.New(v.cli, v.prefix, 0, follow.WithPrefix())
	defer f.Close()
	pace := retry.New()
	relist := false
	for {
		var err error
		if relist {
			if err = v.relist(ctx, f); err == nil {
				relist = false
				pace.Reset()
			}
		} else {
			nctx, cancel := context.WithTimeout(ctx, jitter(v.probe))
			var evs []*clientv3.Event
			evs, relist, err = f.Next(nctx)
			cancel()
			switch {
			case err == nil && !relist:
				v.apply(evs, f.Rev())
			case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
				err = v.check(ctx)
			}
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, errs.Closed) || v.cli.Ctx().Err() != nil:
			v.end(ErrClosed)
			return
		case errs.Refused(err):
			v.end(err)
			return
		}
		v.setStale(true)
		if pace.PauseOr(ctx, v.cli.Ctx().Done(), func() error { return errs.Closed }) != nil {
			if ctx.Err() == nil { // Close leaves Err nil
				v.end(ErrClosed)
			}
			return
		}
	}
}

// jitter returns d give or take a quarter, drawn afresh each time: Views
// that etcd's return (or their start) lined up would otherwise all check
// it again at the same moment, each probe interval.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// check asks etcd for one key, to tell a quiet service from an etcd that
// cannot be reached.
func (v *View) check(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, v.probe)
	defer cancel()
	_, err := v.cli.Get(pctx, v.prefix, clientv3.WithCountOnly())
	if err == nil {
		v.setStale(false)
	}
	return err
}

// relist reads the whole set again and replaces the View's with it.
func (v *View) relist(ctx context.Context, f *follow.Follower) error {
	rctx, cancel := context.WithTimeout(ctx, 2*v.probe)
	defer cancel()
	resp, err := v.cli.Get(rctx, v.prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	f.Reset(resp.Header.Revision)
	set, bad := map[string]Instance{}, map[string]bool{}
	for _, kv := range resp.Kvs {
		v.read(set, bad, kv)
	}
	v.mu.Lock()
	changed := len(set) != len(v.set) || len(bad) != len(v.bad) || v.snap.Stale
	for k, in := range set {
		if old, ok := v.set[k]; !ok || !old.equal(in) {
			changed = true
		}
	}
	for k := range bad {
		changed = changed || !v.bad[k]
	}
	v.set, v.bad = set, bad
	v.snap.Rev, v.snap.Stale = resp.Header.Revision, false
	v.publish(changed)
	v.mu.Unlock()
	select {
	case <-v.ready:
	default:
		close(v.ready)
	}
	return nil
}

// apply applies events up to revision rev to the set.
func (v *View) apply(evs []*clientv3.Event, rev int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	changed := v.snap.Stale
	for _, ev := range evs {
		k := string(ev.Kv.Key)
		old, had := v.set[k]
		wasBad := v.bad[k]
		delete(v.set, k)
		delete(v.bad, k)
		if ev.Type == clientv3.EventTypePut {
			v.read(v.set, v.bad, ev.Kv)
		}
		in, has := v.set[k]
		changed = changed || had != has || wasBad != v.bad[k] || (had && has && !old.equal(in))
	}
	v.snap.Rev, v.snap.Stale = rev, false
	v.publish(changed)
}

// read adds kv to set, or its key to bad if its value is not an instance.
func (v *View) read(set map[string]Instance, bad map[string]bool, kv *mvccpb.KeyValue) {
	k := string(kv.Key)
	in, err := decode(v.service, k[len(v.prefix):], kv.Value)
	if err != nil {
		bad[k] = true
		return
	}
	set[k] = in
}

// setStale records whether etcd can be reached, notifying on a change.
func (v *View) setStale(stale bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	changed := v.snap.Stale != stale
	v.snap.Stale = stale
	v.publish(changed)
}

// publish marks the snapshot out of date and notifies if changed. v.mu is
// held.
func (v *View) publish(changed bool) {
	if !changed {
		return
	}
	v.dirty = true
	select {
	case v.changes <- struct{}{}:
	default:
	}
}

// end records why the View stopped.
func (v *View) end(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err == nil {
		v.err = err
	}
}
