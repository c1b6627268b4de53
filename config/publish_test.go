package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coordkit/coordkit/config"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestPublishGetHistory(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	for i := 1; i <= 3; i++ {
		v, err := config.Publish(t.Context(), cli, name, fmt.Appendf(nil, "n=%d\n", i),
			config.WithAuthor("ann"), config.WithComment(fmt.Sprint("step ", i)))
		require.NoError(t, err)
		require.EqualValues(t, i, v)
	}
	cur, err := config.Get(t.Context(), cli, name)
	require.NoError(t, err)
	require.Equal(t, "n=3\n", string(cur.Data))
	require.EqualValues(t, 3, cur.Version)
	require.Equal(t, "ann", cur.Author)
	require.Equal(t, "step 3", cur.Comment)
	require.False(t, cur.Time.IsZero())

	h, err := config.History(t.Context(), cli, name, 2)
	require.NoError(t, err)
	require.Len(t, h, 2)
	require.EqualValues(t, 3, h[0].Version)
	require.Equal(t, "n=2\n", string(h[1].Data))

	_, err = config.Get(t.Context(), cli, name+"-none")
	require.ErrorIs(t, err, config.ErrNotFound)
}

func TestDefaultAuthorIsUserAtHost(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	_, err := config.Publish(t.Context(), cli, name, []byte("x"))
	require.NoError(t, err)
	cur, err := config.Get(t.Context(), cli, name)
	require.NoError(t, err)
	require.Contains(t, cur.Author, "@")
}

func TestValidatorRefusalWritesNothing(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	_, err := config.Publish(t.Context(), cli, name, []byte("{bad"), config.WithValidator(validLimits))
	require.ErrorIs(t, err, config.ErrInvalid)
	resp, err := cli.Get(t.Context(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count, "keys written despite the refusal")
}

func TestExpectedVersionConflict(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	_, err := config.Publish(t.Context(), cli, name, []byte("a"), config.WithExpectedVersion(0))
	require.NoError(t, err)
	_, err = config.Publish(t.Context(), cli, name, []byte("b"), config.WithExpectedVersion(0))
	require.ErrorIs(t, err, config.ErrConflict)
	v, err := config.Publish(t.Context(), cli, name, []byte("b"), config.WithExpectedVersion(1))
	require.NoError(t, err)
	require.EqualValues(t, 2, v)
	_, err = config.Rollback(t.Context(), cli, name, 1, config.WithExpectedVersion(1))
	require.ErrorIs(t, err, config.ErrConflict)
}

// Concurrent publishers on their own clients race for each version: every
// publish gets its own version, and together they are 1..n with no gap.
func TestConcurrentPublishersGetDistinctConsecutiveVersions(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	const writers, each = 6, 5
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for w := range writers {
		c := srv.NewClient(t)
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("w%d-%d", w, i)
				v, err := config.Publish(t.Context(), c, name, []byte(data))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	want := make([]int64, writers*each)
	for i := range want {
		want[i] = int64(i + 1)
	}
	require.Equal(t, want, got)
	h, err := config.History(t.Context(), cli, name, 0)
	require.NoError(t, err)
	require.Len(t, h, writers*each)
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	_, err := config.Publish(t.Context(), cli, name, make([]byte, 1<<20))
	require.ErrorIs(t, err, config.ErrTooLarge)
	require.Contains(t, err.Error(), "over etcd's limit")
	resp, err := cli.Get(t.Context(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	require.Zero(t, resp.Count)
	// Just under half the limit passes the check, and etcd takes it.
	_, err = config.Publish(t.Context(), cli, name, make([]byte, config.DefaultMaxRequestBytes/2-1024))
	require.NoError(t, err)
}

// History lives in keys of its own: etcd's compaction of its MVCC history
// leaves every version readable, and rollback to the first one works.
func TestHistorySurvivesCompaction(t *testing.T) {
	cli := srv.Client()
	name := testName(t, cli)
	for _, d := range []string{"a", "b", "c"} {
		_, err := config.Publish(t.Context(), cli, name, []byte(d))
		require.NoError(t, err)
	}
	_, err := srv.Compact(t.Context())
	require.NoError(t, err)
	h, err := config.History(t.Context(), cli, name, 0)
	require.NoError(t, err)
	require.Len(t, h, 3)
	require.Equal(t, "a", string(h[2].Data))
	v, err := config.Rollback(t.Context(), cli, name, 1)
	require.NoError(t, err)
	cur, err := config.Get(t.Context(), cli, name)
	require.NoError(t, err)
	require.Equal(t, v, cur.Version)
	require.Equal(t, "a", string(cur.Data))
}

func TestRollback(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	for _, d := range []string{`{"max_conns":1}`, `{"max_conns":2}`} {
		_, err := config.Publish(t.Context(), cli, name, []byte(d))
		require.NoError(t, err)
	}
	v, err := config.Rollback(t.Context(), cli, name, 1, config.WithAuthor("bob"))
	require.NoError(t, err)
	require.EqualValues(t, 3, v)
	cur, err := config.Get(t.Context(), cli, name)
	require.NoError(t, err)
	require.Equal(t, `{"max_conns":1}`, string(cur.Data))
	require.Equal(t, "rollback to version 1", cur.Comment)
	require.Equal(t, "bob", cur.Author)

	_, err = config.Rollback(t.Context(), cli, name, 99)
	require.ErrorIs(t, err, config.ErrNotFound)
	refuse := func([]byte) error { return errors.New("frozen") }
	_, err = config.Rollback(t.Context(), cli, name, 2, config.WithValidator(refuse))
	require.ErrorIs(t, err, config.ErrInvalid)
	cur, err = config.Get(t.Context(), cli, name)
	require.NoError(t, err)
	require.EqualValues(t, 3, cur.Version, "a refused rollback wrote")
}

// Retention deletes old versions with one ranged delete, so dropping more
// than etcd's 128 operations per transaction is one operation.
func TestRetention(t *testing.T) {
	t.Parallel()
	cli := srv.Client()
	name := testName(t, cli)
	for i := range 140 {
		_, err := config.Publish(t.Context(), cli, name, fmt.Append(nil, i))
		require.NoError(t, err)
	}
	_, err := config.Publish(t.Context(), cli, name, []byte("last"), config.WithRetention(2))
	require.NoError(t, err)
	h, err := config.History(t.Context(), cli, name, 0)
	require.NoError(t, err)
	var vs []int64
	for _, v := range h {
		vs = append(vs, v.Version)
	}
	require.Equal(t, []int64{141, 140}, vs)
	_, err = config.Rollback(t.Context(), cli, name, 1)
	require.ErrorIs(t, err, config.ErrNotFound)
}

func TestDiff(t *testing.T) {
	a := config.Value{Name: "n", Version: 1, Data: []byte("a\nb\nc\nd\n")}
	tests := []struct {
		name, b, want string
	}{
		{"equal", "a\nb\nc\nd\n", ""},
		{"change", "a\nB\nc\nd\n", " a\n-b\n+B\n c\n d\n"},
		{"insert", "a\nb\nx\nc\nd\n", " a\n b\n+x\n c\n d\n"},
		{"delete", "a\nd\n", " a\n-b\n-c\n d\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := config.Diff(a, config.Value{Name: "n", Version: 2, Data: []byte(tt.b)})
			if tt.want != "" {
				tt.want = "--- n version 1\n+++ n version 2\n" + tt.want
			}
			if got != tt.want {
				t.Errorf("Diff() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := config.Diff(a, config.Value{Data: []byte("x\ny\n")}); !strings.Contains(got, "-a\n") || !strings.Contains(got, "+y\n") {
		t.Errorf("Diff() = %q", got)
	}
}
