package election

import (
	"context"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/retry"
	obsv "github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaderInfo says who led an election at a revision of the store. A
// LeaderInfo with an empty Key means that nobody led: no candidate had a
// key under the election's name.
type LeaderInfo struct {
	// Key is the leader's key under the election's name, "" if nobody led.
	Key string
	// Value is what the leader campaigned with or last proclaimed.
	Value string
	// Token is the leader key's create revision: the leadership's fencing
	// token, as [Election.Token] gives it to the leader. It strictly
	// increases from one leader to the next.
	Token int64
	// ModRev is the revision at which Value was written.
	ModRev int64
	// Lease is the lease that the leader key is attached to.
	Lease clientv3.LeaseID
	// AsOf is the store revision at which this was the state of the
	// election.
	AsOf int64
}

// sameLeader reports whether a and b describe the same leader with the same
// value, whatever revision they were seen at.
func sameLeader(a, b LeaderInfo) bool {
	a.AsOf, b.AsOf = 0, 0
	return a == b
}

func info(kv *mvccpb.KeyValue, asOf int64) LeaderInfo {
	return LeaderInfo{
		Key:    string(kv.Key),
		Value:  string(kv.Value),
		Token:  kv.CreateRevision,
		ModRev: kv.ModRevision,
		Lease:  clientv3.LeaseID(kv.Lease),
		AsOf:   asOf,
	}
}

// Observe returns a channel that delivers the election's leader: first the
// state when it starts, then every change, in order. A change is a new
// leader, a new value proclaimed by the leader, or nobody leading any more
// (a LeaderInfo with an empty Key). The channel waits for its reader; after
// a compaction it missed, Observe reads the state again, so intermediate
// states may be skipped but the latest never is.
//
// Observe does not campaign and needs no leadership. Its goroutine closes
// the channel when ctx is done, the client is closed, or etcd refuses the
// read or the watch; to be sure it has ended, cancel ctx and receive until
// the channel is closed. Observe has etcd's shape and cannot say why it
// ended: [Election.Watch] is Observe with an Err.
func (e *Election) Observe(ctx context.Context) <-chan LeaderInfo {
	return e.Watch(ctx).Leaders()
}

// Watch starts following the election's leader as [Election.Observe] does,
// and returns a [Watcher] that delivers it and, once it stops, says why.
// Its goroutine ends when ctx is done, the client is closed, or etcd
// refuses the read or the watch; to be sure it has ended, cancel ctx and
// receive from [Watcher.Leaders] until the channel is closed.
func (e *Election) Watch(ctx context.Context) *Watcher {
	w := &Watcher{ch: make(chan LeaderInfo), done: make(chan struct{})}
	cli := e.s.Client()
	go func() {
		defer close(w.ch)
		err := observe(ctx, cli, e.prefix, e.obs, func(ctx context.Context, li LeaderInfo) bool {
			select {
			case w.ch <- li:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if ctx.Err() == nil && cli.Ctx().Err() != nil {
			// observe's deliveries end with the client through a context
			// of their own: say why.
			err = errs.Closed
		}
		// Set before done and the channel close, so that a reader who saw
		// either sees it.
		w.err = err
		close(w.done)
	}()
	return w
}

// Watcher follows an election's leader for [Election.Watch]. It is safe
// for concurrent use.
type Watcher struct {
	ch   chan LeaderInfo
	done chan struct{}
	err  error // written once, before done is closed
}

// Leaders returns the channel of leaders that [Election.Observe] returns.
// The Watcher's goroutine closes it when it stops, after [Watcher.Done].
func (w *Watcher) Leaders() <-chan LeaderInfo { return w.ch }

// Done returns a channel that is closed when the Watcher stops, just
// before the channel of [Watcher.Leaders] is closed.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err returns nil while the Watcher runs, and why it stopped after: the
// context's error, [ErrClosed] for a closed client, or etcd's refusal of
// the read or the watch (permission denied). It is set before the channel
// of [Watcher.Leaders] is closed.
func (w *Watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// observer keeps a copy of every key under an election's prefix and
// delivers the leader (the lowest create revision) each time it changes.
type observer struct {
	cli     *clientv3.Client
	prefix  string
	deliver func(context.Context, LeaderInfo) bool
	keys    map[string]*mvccpb.KeyValue
	last    LeaderInfo
	sent    bool
}

// observe runs until ctx is done, the client is closed, etcd refuses a read
// or the watch, or deliver returns false. Its watch starts in sync with the
// store and its first read comes after, so that the first change is
// delivered as it commits and none falls between the two.
func observe(ctx context.Context, cli *clientv3.Client, prefix string, seen *obsv.Observer, deliver func(context.Context, LeaderInfo) bool) error {
	// A delivery that waits for its reader ends with the client too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cli.Ctx(), cancel)
	defer stop()
	o := &observer{cli: cli, prefix: prefix, deliver: deliver}
	f := follow.New(cli, prefix, 0, follow.WithPrefix(), follow.Observed(seen, obsv.KindElection))
	defer f.Close()
	for {
		evs, relist, err := f.Next(ctx)
		if err != nil {
			return err
		}
		if relist {
			rev, err := o.read(ctx)
			if err != nil {
				return err
			}
			f.Reset(rev)
			if !o.emit(ctx, rev) {
				return ctx.Err()
			}
			continue
		}
		if !o.apply(ctx, evs) {
			return ctx.Err()
		}
	}
}

// read replaces the local copy of the keys with a fresh read and returns
// its revision. It tries again after etcd's passing faults, and returns
// when ctx is done, the client is closed, or etcd refuses the read.
func (o *observer) read(ctx context.Context) (int64, error) {
	pace := retry.New()
	closed := o.cli.Ctx().Done()
	for {
		resp, err := o.cli.Get(ctx, o.prefix, clientv3.WithPrefix())
		if err == nil {
			o.keys = make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				o.keys[string(kv.Key)] = kv
			}
			return resp.Header.Revision, nil
		}
		if errs.Refused(err) {
			return 0, err
		}
		if err := pace.PauseOr(ctx, closed, func() error { return errs.Closed }); err != nil {
			return 0, err
		}
	}
}

// apply applies changes to the local copy and delivers the leader after
// every revision that changed it. It returns false if delivery was
// abandoned.
func (o *observer) apply(ctx context.Context, evs []*clientv3.Event) bool {
	for i, ev := range evs {
		if ev.Type == mvccpb.DELETE {
			delete(o.keys, string(ev.Kv.Key))
		} else {
			o.keys[string(ev.Kv.Key)] = ev.Kv
		}
		// One revision may change several keys (a revoked lease, a Txn):
		// deliver once it is applied in full.
		r := ev.Kv.ModRevision
		if (i+1 == len(evs) || evs[i+1].Kv.ModRevision != r) && !o.emit(ctx, r) {
			return false
		}
	}
	return true
}

// emit delivers the leader as of revision asOf if it differs from the last
// one delivered. It returns false if delivery was abandoned.
func (o *observer) emit(ctx context.Context, asOf int64) bool {
	var lead *mvccpb.KeyValue
	for _, kv := range o.keys {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	cur := LeaderInfo{AsOf: asOf}
	if lead != nil {
		cur = info(lead, asOf)
	}
	if o.sent && sameLeader(cur, o.last) {
		return true
	}
	if !o.deliver(ctx, cur) {
		return false
	}
	o.last, o.sent = cur, true
	return true
}
