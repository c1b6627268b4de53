package testutil

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Replay replays the history of the keys under prefix, from just after
// revision from up to revision to (both as read from response headers), and
// calls check once for every revision at which a key under prefix changed,
// with the keys under prefix as they stood at that revision. It returns how
// many revisions it checked. This is how tests judge an invariant at every
// revision rather than at the moments they happen to look. Nothing under
// prefix may be compacted after from. The test fails if the history cannot
// be read within a minute.
func Replay(tb testing.TB, cli *clientv3.Client, prefix string, from, to int64, check func(rev int64, keys map[string]*mvccpb.KeyValue)) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	if err != nil {
		tb.Fatalf("replay %q: read at %d: %v", prefix, from, err)
	}
	keys := make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		keys[string(kv.Key)] = kv
	}
	// The end of history is known by a progress notification: once the
	// watch is in sync, etcd sends one on request, with a revision that
	// every event before it has been delivered by.
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	checked, cur := 0, int64(0)
	flush := func() {
		if cur != 0 {
			check(cur, keys)
			checked++
			cur = 0
		}
	}
	for {
		select {
		case <-tick.C:
			cli.RequestProgress(ctx)
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				tb.Fatalf("replay %q: watch from %d ended: %v", prefix, from+1, wr.Err())
			}
			for _, ev := range wr.Events {
				rev := ev.Kv.ModRevision
				if rev > to {
					flush()
					return checked
				}
				if rev != cur {
					flush()
					cur = rev
				}
				if ev.Type == mvccpb.DELETE {
					delete(keys, string(ev.Kv.Key))
				} else {
					keys[string(ev.Kv.Key)] = ev.Kv
				}
			}
			if wr.IsProgressNotify() && wr.Header.Revision >= to {
				flush()
				return checked
			}
		}
	}
}
