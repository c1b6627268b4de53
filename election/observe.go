package election

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
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
	// Rev is the leader key's create revision: the leadership's fencing
	// token. It strictly increases from one leader to the next.
	Rev int64
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
		Rev:    kv.CreateRevision,
		ModRev: kv.ModRevision,
		Lease:  clientv3.LeaseID(kv.Lease),
		AsOf:   asOf,
	}
}

// Observe returns a channel that delivers the election's leader: first the
// state when it starts, then every change, in order. A change is a new
// leader, a new value proclaimed by the leader, or nobody leading any more
// (a LeaderInfo with an empty Key). Every change is delivered, and the
// channel waits for its reader; if the watch breaks (compaction, a
// reconnect), Observe reads the state again and delivers it if it changed,
// so intermediate states may then be skipped but the latest never is.
//
// Observe does not campaign and needs no leadership. Its goroutine sends
// on the channel and closes it when ctx is done or the client is closed;
// to be sure it has ended, cancel ctx and receive until the channel is
// closed.
func (e *Election) Observe(ctx context.Context) <-chan LeaderInfo {
	ch := make(chan LeaderInfo)
	go func() {
		defer close(ch)
		observe(ctx, e.s.Client(), e.prefix, func(ctx context.Context, li LeaderInfo) bool {
			select {
			case ch <- li:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch
}

// observer follows every key under an election's prefix and delivers the
// leader (the lowest create revision) each time it changes.
type observer struct {
	cli     *clientv3.Client
	prefix  string
	deliver func(context.Context, LeaderInfo) bool
	keys    map[string]*mvccpb.KeyValue
	last    LeaderInfo
	sent    bool
	retry   backoff.BackOff
}

// observe runs until ctx is done, the client is closed, or deliver returns
// false.
func observe(ctx context.Context, cli *clientv3.Client, prefix string, deliver func(context.Context, LeaderInfo) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cli.Ctx(), cancel)
	defer stop()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 10 * time.Millisecond
	b.MaxInterval = time.Second
	b.MaxElapsedTime = 0
	o := &observer{cli: cli, prefix: prefix, deliver: deliver, retry: b}
	for {
		rev, err := o.read(ctx)
		if err == nil {
			if !o.emit(ctx, rev) {
				return
			}
			o.follow(ctx, rev)
		}
		// The read failed or the watch broke: read again after a pause.
		t := time.NewTimer(o.retry.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// read replaces the local copy of the keys with a fresh read and returns
// its revision.
func (o *observer) read(ctx context.Context) (int64, error) {
	resp, err := o.cli.Get(ctx, o.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	o.keys = make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		o.keys[string(kv.Key)] = kv
	}
	return resp.Header.Revision, nil
}

// follow applies the prefix's changes after revision rev to the local copy
// and delivers the leader after every revision that changed it, until the
// watch breaks or ctx is done.
func (o *observer) follow(ctx context.Context, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The watch starts right after the read, so nothing between is missed;
	// if the store moved on meanwhile, etcd catches it up within ~100 ms.
	wch := o.cli.Watch(wctx, o.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for wr := range wch {
		if wr.Err() != nil || wr.Canceled {
			return
		}
		o.retry.Reset()
		evs := wr.Events
		for i, ev := range evs {
			if ev.Type == mvccpb.DELETE {
				delete(o.keys, string(ev.Kv.Key))
			} else {
				o.keys[string(ev.Kv.Key)] = ev.Kv
			}
			// One revision may change several keys (a revoked lease, a
			// Txn): deliver once it is applied in full.
			r := ev.Kv.ModRevision
			if (i+1 == len(evs) || evs[i+1].Kv.ModRevision != r) && !o.emit(ctx, r) {
				return
			}
		}
	}
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
