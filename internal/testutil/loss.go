package testutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LossCase is one primitive for the loss tests: how to make a handle on a
// name, and its sentinel errors for a hold lost, a session expired and no
// hold (after Release).
type LossCase struct {
	New     NewHold
	Lost    error
	Expired error
	NotHeld error
}

// RequireDoneWhenLeaseRevoked revokes a holder's lease: Done closes, Err
// says the hold was lost, Release reports it, and a new Acquire on the
// expired session fails with Expired.
func RequireDoneWhenLeaseRevoked(t *testing.T, srv *etcdtest.Cluster, c LossCase) {
	t.Helper()
	cli := Client(t, srv)
	pfx := Prefix(t, cli)
	s := Session(t, Client(t, srv), 10)
	m := c.New(s, pfx+"lock")
	require.NoError(t, m.Acquire(t.Context()))
	hctx := m.Context(t.Context())
	_, err := cli.Revoke(t.Context(), s.Lease())
	require.NoError(t, err)
	WaitClosed(t, m.Done(), 10*time.Second, "Done after revoke")
	require.True(t, errors.Is(m.Err(), c.Expired) || errors.Is(m.Err(), c.Lost), "Err = %v", m.Err())
	WaitClosed(t, hctx.Done(), 10*time.Second, "Context after revoke")
	cause := context.Cause(hctx)
	require.True(t, errors.Is(cause, c.Expired) || errors.Is(cause, c.Lost), "Context's cause = %v", cause)
	require.Error(t, m.Release(t.Context()), "releasing a lost hold reports the loss")
	require.ErrorIs(t, m.Acquire(t.Context()), c.Expired, "acquiring on an expired session")
}

// RequireDoneWhenKeyDeleted deletes a holder's key by hand, after a
// compaction that the hold's watch must survive: Done closes, Err is Lost,
// a guarded write does not commit, and Release reports the loss. The same
// handle then holds again, and its guarded write commits. It runs on a
// server of its own: the compaction would cut short other tests' replays.
func RequireDoneWhenKeyDeleted(t *testing.T, c LossCase) {
	t.Helper()
	es := etcdtest.NewServer(t)
	cli := es.Client()
	pfx := Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"data") })
	m := c.New(Session(t, cli, 10), pfx+"lock")
	require.NoError(t, m.Acquire(t.Context()))
	// Context alone, without Done, starts watching the key.
	hctx := m.Context(t.Context())
	_, err := es.Compact(t.Context())
	require.NoError(t, err)
	_, err = cli.Delete(t.Context(), m.Key())
	require.NoError(t, err)
	WaitClosed(t, hctx.Done(), 10*time.Second, "Context after the key was deleted")
	require.ErrorIs(t, context.Cause(hctx), c.Lost, "Context's cause")
	WaitClosed(t, m.Done(), time.Second, "Done after the key was deleted")
	require.ErrorIs(t, m.Err(), c.Lost)
	resp, err := m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "late")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "a guarded write after loss must not commit")
	require.ErrorIs(t, m.Release(t.Context()), c.Lost)

	require.NoError(t, m.Acquire(t.Context()), "holding again on the same handle after the loss")
	hctx = m.Context(t.Context())
	require.NoError(t, hctx.Err(), "the new hold's Context")
	resp, err = m.Txn(t.Context()).Then(clientv3.OpPut(pfx+"data", "x")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded, "the new hold's guarded write commits")
	require.NoError(t, m.Release(t.Context()))
	WaitClosed(t, hctx.Done(), time.Second, "Context after Release")
	require.ErrorIs(t, context.Cause(hctx), c.NotHeld, "Context's cause after Release")
	after := m.Context(t.Context())
	require.ErrorIs(t, context.Cause(after), c.NotHeld, "Context with no hold is cancelled already")

	// A parent that ends first ends the hold's Context, not the hold.
	require.NoError(t, m.Acquire(t.Context()))
	parent, cancel := context.WithCancel(t.Context())
	hctx = m.Context(parent)
	cancel()
	WaitClosed(t, hctx.Done(), time.Second, "Context after its parent")
	require.NoError(t, m.Err(), "the hold outlives its Context's parent")
	require.NoError(t, m.Release(t.Context()))
}

// RequireErrWhenKeyDeleted deletes a holder's key by hand while neither
// Done nor Context has been called for the hold: Err alone must come to
// report the loss, and Release reports it too.
func RequireErrWhenKeyDeleted(t *testing.T, srv *etcdtest.Cluster, c LossCase) {
	t.Helper()
	cli := Client(t, srv)
	pfx := Prefix(t, cli)
	m := c.New(Session(t, Client(t, srv), 10), pfx+"lock")
	require.NoError(t, m.Acquire(t.Context()))
	_, err := cli.Delete(t.Context(), m.Key())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return errors.Is(m.Err(), c.Lost) }, 10*time.Second, 10*time.Millisecond,
		"Err after the key was deleted, with Done never called")
	require.ErrorIs(t, m.Release(t.Context()), c.Lost)
}

// RequireDoneWhenCutOff cuts a holder's client off from etcd and checks
// that the hold is given up on the client's clock while the server still
// has the lease and the key: before anyone else could take it.
func RequireDoneWhenCutOff(t *testing.T, c LossCase) {
	t.Helper()
	es := etcdtest.NewServer(t)
	s := Session(t, es.ProxyClient(t, 0), 2)
	m := c.New(s, "/cut/lock")
	require.NoError(t, m.Acquire(t.Context()))
	done := m.Done()
	es.Member(0).Blackhole()
	defer es.Member(0).Unblackhole()
	WaitClosed(t, done, 10*time.Second, "Done after the client was cut off")
	require.ErrorIs(t, m.Err(), c.Lost)
	ttl, err := es.Client().TimeToLive(t.Context(), s.Lease())
	require.NoError(t, err)
	require.GreaterOrEqual(t, ttl.TTL, int64(0), "the server must still hold the lease when the client gives up")
	resp, err := es.Client().Get(t.Context(), "/cut/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.Count, "the key is still there: nobody else could hold it yet")
}

// RunLossTests runs the loss tests for c, side by side, as subtests
// LeaseRevoked, KeyDeleted, ErrSeesKeyDeleted and CutOff.
func RunLossTests(t *testing.T, srv *etcdtest.Cluster, c LossCase) {
	t.Helper()
	t.Run("LeaseRevoked", func(t *testing.T) {
		t.Parallel()
		RequireDoneWhenLeaseRevoked(t, srv, c)
	})
	t.Run("KeyDeleted", func(t *testing.T) {
		t.Parallel()
		RequireDoneWhenKeyDeleted(t, c)
	})
	t.Run("ErrSeesKeyDeleted", func(t *testing.T) {
		t.Parallel()
		RequireErrWhenKeyDeleted(t, srv, c)
	})
	t.Run("CutOff", func(t *testing.T) {
		t.Parallel()
		RequireDoneWhenCutOff(t, c)
	})
}
