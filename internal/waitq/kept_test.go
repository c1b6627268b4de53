package waitq_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TestKeptWatchIsReused: waits of one handle, each on a new incarnation of
// the same key, share one watch from the second on (the first wait's is not
// kept: most handles that wait once never wait again); without a Kept,
// each opens its own.
func TestKeptWatchIsReused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		keep  bool
		watch int64
	}{{"kept", true, 2}, {"not kept", false, 5}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli, c := testutil.CountedClient(t, srv)
			pfx := testutil.Prefix(t, cli)
			s := testutil.Session(t, cli, 10)
			var kept waitq.Kept
			defer kept.Close()
			ahead := pfx + "ahead"
			for i := range 5 {
				w := waitq.New(s, pfx, waitq.Key(pfx, s))
				if tt.keep {
					w.Keep = &kept
				}
				_, _, err := w.Join(t.Context(), "")
				require.NoError(t, err)
				put, err := cli.Put(t.Context(), ahead, "")
				require.NoError(t, err)
				kv := &mvccpb.KeyValue{Key: []byte(ahead), CreateRevision: put.Header.Revision}
				got := waitDelete(t, w, kv, put.Header.Revision)
				del, err := cli.Delete(t.Context(), ahead)
				require.NoError(t, err)
				require.Equal(t, del.Header.Revision, <-got, "wait %d returns with the deletion's revision", i)
				require.NoError(t, w.Leave(t.Context()))
			}
			require.Equal(t, int(tt.watch), c.WatchesUnder(pfx), "watches created for five waits")
		})
	}
}

// TestKeptWatchSkipsEarlierIncarnations: a deletion the kept watch saw
// while nobody waited is of an earlier incarnation of the key, and must not
// end a wait for the next one.
func TestKeptWatchSkipsEarlierIncarnations(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	var kept waitq.Kept
	defer kept.Close()
	ahead := pfx + "ahead"
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	w.Keep = &kept
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	defer w.Leave(context.Background())

	// Two waits: the second one's watch is kept.
	var got <-chan int64
	for range 2 {
		put, err := cli.Put(t.Context(), ahead, "")
		require.NoError(t, err)
		got = waitDelete(t, w, &mvccpb.KeyValue{Key: []byte(ahead), CreateRevision: put.Header.Revision}, put.Header.Revision)
		_, err = cli.Delete(t.Context(), ahead)
		require.NoError(t, err)
		<-got
	}

	// While the watch is kept, the key comes and goes, then comes again.
	_, err = cli.Put(t.Context(), ahead, "")
	require.NoError(t, err)
	_, err = cli.Delete(t.Context(), ahead)
	require.NoError(t, err)
	put, err := cli.Put(t.Context(), ahead, "")
	require.NoError(t, err)
	creates := c.WatchesUnder(pfx)
	got = waitDelete(t, w, &mvccpb.KeyValue{Key: []byte(ahead), CreateRevision: put.Header.Revision}, put.Header.Revision)
	select {
	case rev := <-got:
		t.Fatalf("the wait ended at revision %d, on an earlier incarnation's deletion (the key lives since %d)", rev, put.Header.Revision)
	case <-time.After(200 * time.Millisecond):
	}
	del, err := cli.Delete(t.Context(), ahead)
	require.NoError(t, err)
	require.Equal(t, del.Header.Revision, <-got)
	require.Equal(t, creates, c.WatchesUnder(pfx), "the kept watch served the wait")
}

// TestKeptWatchOnAnotherKey: a wait on another key closes the kept watch
// and opens its own.
func TestKeptWatchOnAnotherKey(t *testing.T) {
	t.Parallel()
	cli, c := testutil.CountedClient(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	var kept waitq.Kept
	defer kept.Close()
	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	w.Keep = &kept
	_, _, err := w.Join(t.Context(), "")
	require.NoError(t, err)
	defer w.Leave(context.Background())
	for i, key := range []string{pfx + "a", pfx + "b"} {
		put, err := cli.Put(t.Context(), key, "")
		require.NoError(t, err)
		before := c.WatchesUnder(pfx)
		got := waitDelete(t, w, &mvccpb.KeyValue{Key: []byte(key), CreateRevision: put.Header.Revision}, put.Header.Revision)
		del, err := cli.Delete(t.Context(), key)
		require.NoError(t, err)
		require.Equal(t, del.Header.Revision, <-got, "wait %d", i)
		require.Greater(t, c.WatchesUnder(pfx), before, "wait %d on %s opened a watch", i, key)
	}
}

// waitDelete runs w.WaitDelete in the background and sends the revision it
// returns, failing the test on an error.
func waitDelete(t *testing.T, w *waitq.Waiter, kv *mvccpb.KeyValue, readRev int64) <-chan int64 {
	got := make(chan int64, 1)
	go func() {
		rev, err := w.WaitDelete(t.Context(), kv, readRev)
		if err != nil {
			t.Errorf("WaitDelete: %v", err)
		}
		got <- rev
	}()
	// Let the watch start (or not: the gap read covers it); a kept watch
	// needs no time.
	time.Sleep(20 * time.Millisecond)
	return got
}
