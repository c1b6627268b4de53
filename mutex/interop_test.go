package mutex_test

import (
	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestInteropNameEndingInSlash: etcd's own examples write names such as
// "my-lock/", and concurrency.NewMutex (which "etcdctl lock NAME" calls)
// appends "/" whatever the name ends with. A coordkit Mutex on the same
// name string must use the same prefix, so that each excludes the other.
func TestInteropNameEndingInSlash(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, suffix string }{
		{"one slash", "lock/"},
		{"two slashes", "lock//"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := testutil.Client(t, srv)
			pfx := testutil.Prefix(t, cli)
			ctx := t.Context()
			name := pfx + tt.suffix
			ours := mutex.New(testutil.Session(t, cli, 10), name)
			ts := testutil.Session(t, testutil.Client(t, srv), 10)
			theirs := concurrency.NewMutex(ts, name)
			require.Equal(t, name+"/", ours.Name(), "etcd's prefix for the same name")

			// Ours holds: etcd's TryLock is refused.
			require.NoError(t, ours.Lock(ctx))
			require.ErrorIs(t, theirs.TryLock(ctx), concurrency.ErrLocked, "etcd's TryLock while ours holds %s", ours.Key())
			require.NoError(t, ours.Unlock(ctx))

			// Theirs holds: our TryLock is refused.
			require.NoError(t, theirs.Lock(ctx))
			require.ErrorIs(t, ours.TryLock(ctx), mutex.ErrLocked, "our TryLock while etcd's holds %s", theirs.Key())
			require.NoError(t, theirs.Unlock(ctx))
		})
	}
}
