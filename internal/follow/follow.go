package follow

import (
	"context"
	"sync/atomic"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Option changes what a [Follower] follows.
type Option interface{ apply(*Follower) }

type optionFunc func(*Follower)

func (f optionFunc) apply(fl *Follower) { f(fl) }

// WithPrefix follows every key that starts with the key given to [New].
func WithPrefix() Option { return optionFunc(func(f *Follower) { f.prefix = true }) }

// WithFilterPut delivers deletions only, for a caller that waits for keys
// to go: etcd then sends nothing for a write, which under a busy prefix
// would wake every follower for each new key.
func WithFilterPut() Option { return optionFunc(func(f *Follower) { f.filterPut = true }) }

// WithResume starts the first watch right after the revision given to
// [New] instead of in sync with the store: it opens with no read before
// and no relist after, at the cost of etcd's catch-up loop (up to ~100 ms)
// delivering the first changes if the store has moved since that
// revision. For a caller whose round trips matter more than that delay.
func WithResume() Option { return optionFunc(func(f *Follower) { f.resume = true }) }

// Observed makes the follower report each watch it re-opens, and a
// refused one, to o, labelled with kind (one of observe's Kind constants,
// or "" for a watch shared by several). A nil o observes nothing.
func Observed(o *observe.Observer, kind string) Option {
	return optionFunc(func(f *Follower) { f.obs, f.kind = o, kind })
}

// Follower delivers the changes to a key or a prefix after a revision, in
// order, across broken watches. It is not safe for concurrent use. Its one
// watch lives until [Follower.Close]; it starts no goroutine of its own.
type Follower struct {
	cli    *clientv3.Client
	key    string
	prefix bool
	// filterPut asks etcd for deletions only.
	filterPut bool
	last      int64 // every change up to last has been delivered or read
	started   int64 // the revision the last in-sync watch started after

	ch     clientv3.WatchChan
	cancel context.CancelFunc
	resume bool         // the next watch starts at last+1 rather than in sync
	pace   *retry.Pacer // spaces out re-opening a broken watch
	obs    *observe.Observer
	kind   string
	// Counts for tests, read while Next runs: watches opened, and watches
	// that etcd confirmed.
	opens, created atomic.Int64
}

// New returns a follower of key from revision rev on: Next delivers the
// changes made after rev. rev is the revision of a read of key made just
// before; with rev 0 the first Next reports relist as soon as the watch is
// established, so that the caller's first read comes after it. New does no
// I/O.
func New(cli *clientv3.Client, key string, rev int64, opts ...Option) *Follower {
	f := &Follower{cli: cli, key: key, last: rev}
	for _, o := range opts {
		o.apply(f)
	}
	return f
}

// Rev returns the revision up to which every change has been delivered.
func (f *Follower) Rev() int64 { return f.last }

// Started returns the revision of the store when the follower's last
// in-sync watch was established, 0 before one was: the watch delivers
// every change after it. After Next reports relist, a read that reflects
// Started or later leaves no gap, so it may be served by any member that
// has caught up (a serializable read), not only the leader.
func (f *Follower) Started() int64 { return f.started }

// Reset tells the follower that the caller has read the key at revision
// rev: changes up to rev are not delivered. Call it after every read that
// a relist asked for, and after any other read of the key.
func (f *Follower) Reset(rev int64) { f.last = max(f.last, rev) }

// Next blocks until there are changes after [Follower.Rev], and returns
// them in revision order. It reports relist (and no events) when changes
// may have been missed: the caller reads the key again and calls
// [Follower.Reset] with the read's revision. It returns an error when ctx
// ends (satisfying errors.Is(err, ctx.Err())), when the client is closed
// ([errs.Closed]) or when etcd refuses the watch (an error that satisfies
// [errs.Refused]); the watch is kept for the next call unless the error is
// final. A broken watch is opened again, never returned.
func (f *Follower) Next(ctx context.Context) (evs []*clientv3.Event, relist bool, err error) {
	closed := f.cli.Ctx().Done()
	for {
		if f.ch == nil && !f.open(ctx) {
			return nil, false, ctx.Err()
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-closed:
			f.stop()
			return nil, false, errs.Closed
		case wr, ok := <-f.ch:
			switch {
			case ok && wr.CompactRevision > 0:
				// What we would resume from is gone: watch in sync, then
				// have the caller read the present.
				f.stop()
				f.resume = false
				obs.WatchRestarted(f.obs, f.kind, f.key, observe.ReasonCompacted, nil)
				continue
			case ok && errs.Refused(watchErr(wr)):
				f.stop()
				obs.WatchRestarted(f.obs, f.kind, f.key, observe.ReasonRefused, watchErr(wr))
				return nil, false, watchErr(wr)
			case !ok || wr.Err() != nil || wr.Canceled:
				f.stop()
				if f.cli.Ctx().Err() != nil {
					return nil, false, errs.Closed
				}
				// Resume where delivery stopped; with nothing delivered or
				// read yet there is nowhere to resume from, so the next
				// watch starts in sync and asks for the first read.
				f.resume = f.last > 0
				if ctx.Err() == nil {
					obs.WatchRestarted(f.obs, f.kind, f.key, observe.ReasonBroken, watchErr(wr))
				}
				if err := f.pacer().PauseOr(ctx, closed, func() error { return errs.Closed }); err != nil {
					return nil, false, err
				}
				continue
			case wr.Created:
				f.created.Add(1)
				f.pacer().Reset()
				if !f.resume {
					f.started = wr.Header.Revision
				}
				if !f.resume && wr.Header.Revision > f.last {
					// The store moved since the caller's read (or there was
					// none): the watch covers only what comes after its start.
					return nil, true, nil
				}
				continue
			case wr.IsProgressNotify():
				// Every change up to the header's revision has been sent.
				f.last = max(f.last, wr.Header.Revision)
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
// changes are delivered as they commit, not by etcd's catch-up loop that
// runs every 100 ms) unless it resumes after a broken watch. The watch
// lives until Close, whatever ctx a call to Next had; but etcd's client
// blocks in Watch until its stream takes the request and etcd confirms it,
// which a partition can hold up indefinitely, so ctx ending meanwhile
// abandons the watch and open reports false.
func (f *Follower) open(ctx context.Context) bool {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify(), clientv3.WithProgressNotify()}
	if f.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if f.filterPut {
		opts = append(opts, clientv3.WithFilterPut())
	}
	if f.resume && f.last > 0 {
		opts = append(opts, clientv3.WithRev(f.last+1))
	}
	f.opens.Add(1)
	unhook := context.AfterFunc(ctx, cancel)
	ch := f.cli.Watch(wctx, f.key, opts...)
	if !unhook() {
		cancel()
		return false
	}
	f.cancel, f.ch = cancel, ch
	return true
}

// Close ends the follower's watch, if any. The follower is not used after.
// A nil follower may be closed, for a caller that makes one only when it
// has to wait.
func (f *Follower) Close() {
	if f != nil {
		f.stop()
	}
}

// stop ends the current watch; the next call to Next opens another.
func (f *Follower) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.cancel, f.ch = nil, nil
}

// pacer returns the follower's pacer, made on first use.
func (f *Follower) pacer() *retry.Pacer {
	if f.pace == nil {
		f.pace = retry.New()
	}
	return f.pace
}

// watchErr returns wr's error. etcd refuses a watch with the text of its
// gRPC error as the cancel reason, which the client turns into an error
// with no type; that one is returned as rpctypes.ErrPermissionDenied, so
// that errors.Is and [errs.Refused] recognise it.
func watchErr(wr clientv3.WatchResponse) error {
	err := wr.Err()
	if err != nil && err.Error() == rpctypes.ErrGRPCPermissionDenied.Error() {
		return rpctypes.ErrPermissionDenied
	}
	return err
}
