package stm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/stm"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// setup returns a new client and the test's prefix, whose keys are deleted
// when the test ends, before testutil checks that the prefix is empty.
func setup(t *testing.T) (*clientv3.Client, string) {
	t.Helper()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() {
		if _, err := cli.Delete(context.Background(), pfx, clientv3.WithPrefix()); err != nil {
			t.Errorf("delete %s: %v", pfx, err)
		}
	})
	return cli, pfx
}

func put(t *testing.T, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), key, val)
	require.NoError(t, err)
	return resp.Header.Revision
}

// get returns key's value, or "<none>" if it does not exist.
func get(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return "<none>"
	}
	return string(resp.Kvs[0].Value)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

func TestReadYourWrites(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	putRev := put(t, cli, p+"a", "1")
	put(t, cli, p+"gone", "x")

	res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		v, err := tx.Get(p + "a")
		require.NoError(t, err)
		require.Equal(t, "1", v)
		rev, err := tx.Rev(p + "a")
		require.NoError(t, err)
		require.Equal(t, putRev, rev)

		v, err = tx.Get(p + "missing")
		require.NoError(t, err)
		require.Empty(t, v)
		rev, err = tx.Rev(p + "missing")
		require.NoError(t, err)
		require.Zero(t, rev)

		tx.Put(p+"a", "2")
		tx.Put(p+"new", "n")
		tx.Delete(p + "gone")
		vals, err := tx.GetMany(p+"new", p+"a", p+"gone", p+"missing")
		require.NoError(t, err)
		require.Equal(t, []string{"n", "2", "", ""}, vals, "GetMany sees the transaction's writes")
		rev, err = tx.Rev(p + "a")
		require.NoError(t, err)
		require.Equal(t, putRev, rev, "Rev ignores the transaction's own writes")
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "2", get(t, cli, p+"a"))
	require.Equal(t, "n", get(t, cli, p+"new"))
	require.Equal(t, "<none>", get(t, cli, p+"gone"))

	resp, err := cli.Get(t.Context(), p+"a")
	require.NoError(t, err)
	require.Equal(t, res.Revision, resp.Kvs[0].ModRevision, "Result.Revision is the commit's revision")
}

// etcd's STM returns the first key's value for Get("a", "b"); GetMany must
// return each key's own value, in order, in one round trip.
func TestGetManyPerKey(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	for i := range 5 {
		put(t, cli, fmt.Sprintf("%sk%d", p, i), strconv.Itoa(i*10))
	}
	_, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		got, err := tx.GetMany(p+"k3", p+"k0", p+"nope", p+"k4", p+"k3")
		require.NoError(t, err)
		require.Equal(t, []string{"30", "0", "", "40", "30"}, got)
		got, err = tx.GetMany()
		require.NoError(t, err)
		require.Empty(t, got)
		return nil
	})
	require.NoError(t, err)
}

func TestUserErrorReturnedAsIs(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	put(t, cli, p+"a", "1")
	errInsufficient := errors.New("insufficient funds")
	wrapped := fmt.Errorf("transfer: %w", errInsufficient)

	res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		if _, err := tx.Get(p + "a"); err != nil {
			return err
		}
		tx.Put(p+"a", "0")
		return wrapped
	})
	require.Same(t, wrapped, err, "Run() = %v, want fn's error as is", err)
	require.ErrorIs(t, err, errInsufficient)
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "1", get(t, cli, p+"a"), "nothing committed")
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	put(t, cli, p+"a", "1")

	res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		tx.Put(p+"a", "2")
		tx.Put(p+"b", "2")
		panic("boom")
	})
	require.ErrorIs(t, err, stm.ErrPanic)
	var perr *stm.PanicError
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "boom", perr.Value)
	require.Contains(t, string(perr.Stack), "TestPanicIsRecovered", "the stack is the panicking goroutine's")
	require.Equal(t, 1, res.Attempts)
	require.Equal(t, "1", get(t, cli, p+"a"), "nothing committed")
	require.Equal(t, "<none>", get(t, cli, p+"b"), "nothing committed")

	// A panic with an error value unwraps to it; a panic on a later
	// attempt is recovered as well.
	attempts := 0
	_, err = stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		attempts++
		if _, err := tx.Get(p + "a"); err != nil {
			return err
		}
		if attempts == 1 {
			put(t, cli, p+"a", "3") // a conflict, so fn runs again
			tx.Put(p+"a", "4")
			return nil
		}
		panic(io.ErrUnexpectedEOF)
	})
	require.ErrorIs(t, err, stm.ErrPanic)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, 2, attempts)
	require.Equal(t, "3", get(t, cli, p+"a"))
}

func TestTxUnusableAfterFunctionReturns(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	var leaked stm.Tx
	_, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		leaked = tx
		return nil
	})
	require.NoError(t, err)
	_, err = leaked.Get(p + "a")
	require.ErrorIs(t, err, stm.ErrTxDone)
	_, err = leaked.Range(p, clientv3.GetPrefixRangeEnd(p), 0)
	require.ErrorIs(t, err, stm.ErrTxDone)
	require.PanicsWithValue(t, "stm: Tx.Put called after the transaction function returned", func() { leaked.Put(p+"a", "x") })
}

func TestInvalidInputPanics(t *testing.T) {
	t.Parallel()
	cli, _ := setup(t)
	require.Panics(t, func() { stm.WithMaxAttempts(0) })
	require.Panics(t, func() { stm.WithBackoff(-1, 0) })
	require.Panics(t, func() { stm.WithBackoff(2, 1) })
	require.Panics(t, func() { stm.WithIsolation(stm.Isolation(7)) })
	require.Panics(t, func() { stm.Run(t.Context(), nil, func(stm.Tx) error { return nil }) })
	require.Panics(t, func() { stm.Run(t.Context(), cli, nil) })
	// Misuse inside fn is a panic in fn: Run returns it.
	_, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
		_, err := tx.Range("a", "b", -1)
		return err
	})
	require.ErrorIs(t, err, stm.ErrPanic)
}

func TestReadOnlyNeedsNoCommit(t *testing.T) {
	t.Parallel()
	cli, p := setup(t)
	rev := put(t, cli, p+"a", "1")
	for _, iso := range []stm.Isolation{stm.SerializableSnapshot, stm.Serializable, stm.RepeatableReads, stm.ReadCommitted} {
		res, err := stm.Run(t.Context(), cli, func(tx stm.Tx) error {
			_, err := tx.Get(p + "a")
			return err
		}, stm.WithIsolation(iso))
		require.NoError(t, err, iso)
		require.Equal(t, 1, res.Attempts, iso)
		require.GreaterOrEqual(t, res.Revision, rev, iso)
	}
	res, err := stm.Run(t.Context(), cli, func(stm.Tx) error { return nil })
	require.NoError(t, err)
	require.Zero(t, res.Revision, "a transaction that neither reads nor writes has no revision")
}
