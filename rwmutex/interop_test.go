package rwmutex_test

import (
	"context"

	"testing"

	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/rwmutex"
	"github.com/stretchr/testify/require"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
)

// TestInteropNameEndingInSlash: etcd's recipe.NewRWMutex appends "/" to
// the name whatever it ends with. A coordkit RWMutex on the same name
// string must use the same prefix, so that each one's writer excludes the
// other's readers and writers. The recipe's calls take no context and
// cannot be cancelled, so each of its waits is ended by our Unlock.
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
			ours := rwmutex.New(testutil.Session(t, cli, 10), name)
			theirs := recipe.NewRWMutex(testutil.Session(t, testutil.Client(t, srv), 10), name)
			require.Equal(t, name+"/", ours.Name(), "the recipe's prefix for the same name")
			call := func(f func() error) <-chan error { return async(func(context.Context) error { return f() }, ctx) }

			// Ours writes: the recipe's reader and writer wait until ours
			// unlocks.
			require.NoError(t, ours.Lock(ctx))
			theirsRead := call(theirs.RLock)
			waitKeys(t, cli, pfx, 2)
			pending(t, theirsRead, "their RLock while ours writes")
			require.NoError(t, ours.Unlock(ctx))
			require.NoError(t, result(t, theirsRead))
			require.NoError(t, theirs.RUnlock())

			require.NoError(t, ours.Lock(ctx))
			theirsWrite := call(theirs.Lock)
			waitKeys(t, cli, pfx, 2)
			pending(t, theirsWrite, "their Lock while ours writes")
			require.NoError(t, ours.Unlock(ctx))
			require.NoError(t, result(t, theirsWrite))

			// Theirs writes: ours can neither read nor write.
			require.ErrorIs(t, ours.TryRLock(ctx), rwmutex.ErrLocked, "our TryRLock while theirs writes")
			require.ErrorIs(t, ours.TryLock(ctx), rwmutex.ErrLocked, "our TryLock while theirs writes")
			require.NoError(t, theirs.Unlock())
		})
	}
}
