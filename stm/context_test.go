package stm_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// conflictEvery returns a transaction that reads key and, on every attempt,
// has other write it before committing, so that no attempt can commit.
func conflictEvery(other *clientv3.Client, key string, attempts *int) func(stm.Tx) error {
	return func(tx stm.Tx) error {
		*attempts++
		if _, err := tx.Get(key); err != nil {
			return err
		}
		if _, err := other.Put(context.Background(), key, strconv.Itoa(*attempts)); err != nil {
			return err
		}
		tx.Put(key, "mine")
		return nil
	}
}

func TestMaxAttempts(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	var stats stm.Stats
	attempts := 0
	res, err := stm.Run(t.Context(), cli, conflictEvery(testutil.Client(t, srv), p+"k", &attempts),
		stm.WithMaxAttempts(3), stm.WithBackoff(0, 0), stm.WithStats(&stats))
	require.ErrorIs(t, err, stm.ErrTooManyAttempts)
	require.ErrorIs(t, err, stm.ErrConflict)
	requireNoStutter(t, err)
	require.Equal(t, 3, attempts)
	require.Equal(t, stm.Result{Attempts: 3, Conflicts: 3}, res)
	require.Equal(t, "3", get(t, cli, p+"k"))

	_, err = stm.Run(t.Context(), cli, incr(p+"k"), stm.WithStats(&stats))
	require.NoError(t, err)
	require.Equal(t, int64(1), stats.Commits())
	require.Equal(t, int64(4), stats.Attempts())
	require.Equal(t, int64(3), stats.Conflicts())
	require.Equal(t, 4.0, stats.AttemptsPerCommit())
}

func TestContextEndsRun(t *testing.T) {
	t.Parallel()
	t.Run("canceled while backing off", func(t *testing.T) {
		t.Parallel()
		cli, p := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		tap := &txnTap{fault: func(n int, _ *pb.TxnRequest, call func() error) error {
			err := call()
			if n == 2 {
				cancel() // after the conflicting commit, before the wait ends
			}
			return err
		}}
		attempts := 0
		res, err := stm.Run(ctx, tap.client(t), conflictEvery(testutil.Client(t, srv), p+"k", &attempts),
			stm.WithBackoff(time.Hour, time.Hour))
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, stm.ErrConflict, "the last failure is kept")
		require.NotErrorIs(t, err, stm.ErrUncertain)
		requireNoStutter(t, err)
		require.Equal(t, 1, res.Attempts)
		require.Equal(t, "1", get(t, cli, p+"k"))
	})
	t.Run("canceled inside fn", func(t *testing.T) {
		t.Parallel()
		cli, p := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		other := testutil.Client(t, srv)
		tap := &txnTap{}
		attempts := 0
		res, err := stm.Run(ctx, tap.client(t), func(tx stm.Tx) error {
			attempts++
			if _, err := tx.Get(p + "k"); err != nil {
				return err
			}
			if attempts == 1 {
				put(t, other, p+"k", "other") // conflict
			} else {
				cancel()
			}
			tx.Put(p+"k", "mine")
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, stm.ErrUncertain, "a commit not sent did not commit")
		require.Equal(t, 2, res.Attempts)
		require.Equal(t, 3, tap.count(), "read, commit, read: the second commit is not sent")
		require.Equal(t, "other", get(t, cli, p+"k"))
	})
	t.Run("canceled with the commit in flight", func(t *testing.T) {
		t.Parallel()
		_, p := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		tap := &txnTap{fault: func(n int, _ *pb.TxnRequest, call func() error) error {
			if n == 2 {
				cancel()
			}
			return call()
		}}
		_, err := stm.Run(ctx, tap.client(t), incr(p+"n"))
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, stm.ErrUncertain)
		requireNoStutter(t, err)
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		cli, p := setup(t)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		attempts := 0
		res, err := stm.Run(ctx, cli, conflictEvery(testutil.Client(t, srv), p+"k", &attempts))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, attempts, res.Attempts)
		require.NotEqual(t, "mine", get(t, cli, p+"k"))
	})
}

// An attempt whose snapshot revision is compacted away in the middle of it
// starts again at a new one. Not parallel: it compacts the shared server,
// which the parallel tests' snapshots must not see.
func TestCompactedSnapshotIsRetried(t *testing.T) {
	cli, p := setup(t)
	put(t, cli, p+"a", "1")
	put(t, cli, p+"b", "1")
	attempts := 0
	res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		attempts++
		a, err := tx.Get(p + "a")
		if err != nil {
			return err
		}
		if attempts == 1 {
			put(t, cli, p+"b", "2")
			_, err := srv.Compact(t.Context())
			require.NoError(t, err)
		}
		b, err := tx.Get(p + "b") // at the first read's revision
		if err != nil {
			return err
		}
		tx.Put(p+"sum", strconv.Itoa(atoi(t, a)+atoi(t, b)))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts)
	require.Equal(t, 1, res.Errors)
	require.Equal(t, "3", get(t, cli, p+"sum"))
}

// requireNoStutter checks that an error from Run names its package once:
// "stm: too many attempts (3): conflict", not "stm: stm: …: stm: conflict".
func requireNoStutter(t *testing.T, err error) {
	t.Helper()
	require.Equal(t, 1, strings.Count(err.Error(), "stm:"), "Run() = %q, want one \"stm:\"", err)
}
