package waitq_test

import (
	"context"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/internal/waitq"
	"github.com/stretchr/testify/require"
)

func TestHandle(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	s := testutil.Session(t, cli, 10)
	ctx := t.Context()
	h := waitq.NewHandle()
	notHeld := context.Canceled // any sentinel will do

	select {
	case <-h.Done():
	default:
		t.Fatal("Done before the first hold must be closed")
	}
	require.ErrorIs(t, h.Err(notHeld), notHeld)
	require.Zero(t, h.Token())
	ok, _, _ := h.Release(ctx, notHeld, nil)
	require.False(t, ok, "Release with nothing held")

	// One turn at a time.
	require.NoError(t, h.Enter(ctx, true))
	require.ErrorIs(t, h.Enter(ctx, false), waitq.ErrWouldWait)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, h.Enter(short, true), context.DeadlineExceeded)

	w := waitq.New(s, pfx, waitq.Key(pfx, s))
	require.NoError(t, w.Acquire(ctx, "", waitq.First{Block: true}))
	h.Start(w)
	require.NoError(t, h.Err(notHeld))
	require.Equal(t, w.Rev(), h.Token())
	require.Equal(t, w.Key(), h.Key())
	resp, err := cli.Txn(ctx).If(h.IsOwner(w.Key())).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded, "IsOwner while held")
	done := h.Done()

	ok, _, _ = h.Release(ctx, notHeld, func(*waitq.Hold) bool { return false })
	require.False(t, ok, "Release of a hold that match rejects")
	require.Equal(t, w.Key(), h.Key(), "a rejected Release touches nothing")

	ok, lost, err := h.Release(ctx, notHeld, nil)
	require.True(t, ok)
	require.NoError(t, lost)
	require.NoError(t, err)
	<-done
	require.ErrorIs(t, h.Err(notHeld), notHeld)
	resp, err = cli.Txn(ctx).If(h.IsOwner(w.Key())).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "IsOwner with nothing held is never true")
	resp2, err := cli.Get(ctx, w.Key())
	require.NoError(t, err)
	require.Zero(t, resp2.Count, "Release deletes the key")

	// The turn is free again; a hold whose key was deleted by someone else
	// reports the loss at Release.
	require.NoError(t, h.Enter(ctx, false))
	require.NoError(t, w.Acquire(ctx, "", waitq.First{Block: true}))
	h.Start(w)
	_, err = cli.Delete(ctx, w.Key())
	require.NoError(t, err)
	ok, lost, err = h.Release(ctx, notHeld, nil)
	require.True(t, ok)
	require.NoError(t, err)
	require.ErrorIs(t, lost, errs.Lost)
}
