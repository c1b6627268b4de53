package chaos_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/stretchr/testify/require"
)

// The harness's own tests: a checker that cannot fail, or a model that
// accepts everything, would make every scenario pass vacuously.

func TestFenceStoreEnforcing(t *testing.T) {
	s := chaos.NewFenceStore(t, chaos.Enforcing)
	a, b := chaos.NewFenceClient(s.URL(), 1), chaos.NewFenceClient(s.URL(), 2)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()

	require.NoError(t, a.Begin(ctx, 5))
	set, err := a.Read(ctx, 5)
	require.NoError(t, err)
	require.Empty(t, set)
	require.NoError(t, b.Begin(ctx, 7))
	require.ErrorIs(t, a.Write(ctx, 5, []int{1}), chaos.ErrStale, "write with a token below the highest seen")
	require.NoError(t, b.Write(ctx, 7, []int{2}))
	require.NoError(t, a.End(ctx, 5), "end is never fenced")
	require.Equal(t, []int{2}, s.Set())
	require.Empty(t, chaos.StaleAccepted(s.Log()))
	require.Empty(t, chaos.Overlaps(s.Log()))
	require.Len(t, chaos.LateEnds(s.Log()), 1, "a's end came after b began")
	require.Equal(t, []int64{5, 7}, chaos.Begins(s.Log()))
}

func TestFenceStoreRecording(t *testing.T) {
	s := chaos.NewFenceStore(t, chaos.Recording)
	a, b := chaos.NewFenceClient(s.URL(), 1), chaos.NewFenceClient(s.URL(), 2)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()

	// The lock-set lost update: a reads, b reads and writes, a writes.
	require.NoError(t, a.Begin(ctx, 5))
	_, err := a.Read(ctx, 5)
	require.NoError(t, err)
	require.NoError(t, b.Begin(ctx, 7))
	_, err = b.Read(ctx, 7)
	require.NoError(t, err)
	require.NoError(t, b.Write(ctx, 7, []int{2}))
	require.NoError(t, a.Write(ctx, 5, []int{1}), "a recording store accepts everything")
	require.Len(t, chaos.Overlaps(s.Log()), 1)
	require.Len(t, chaos.StaleAccepted(s.Log()), 1)
	require.Equal(t, []int{2}, chaos.LostAdds([]int{1, 2}, s.Set()))
}

func TestTokensIncrease(t *testing.T) {
	require.NoError(t, chaos.TokensIncrease([]int64{3, 9, 12}))
	require.Error(t, chaos.TokensIncrease([]int64{3, 9, 9}))
	require.Error(t, chaos.TokensIncrease([]int64{3, 9, 4}))
}

// TestRegisterModelOnStore hammers an enforcing store from concurrent
// clients and checks the history against the fenced-register model: the
// store and its client plumbing behave as the model says.
func TestRegisterModelOnStore(t *testing.T) {
	s := chaos.NewFenceStore(t, chaos.Enforcing)
	rec := chaos.NewRecorder()
	r := chaos.Rand(t)
	const clients, ops = 4, 60
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = r.Uint64()
	}
	var wg sync.WaitGroup
	for c := range clients {
		fc := chaos.NewFenceClient(s.URL(), c)
		defer fc.Close()
		wg.Go(func() {
			for i := range ops {
				tok := int64(i + int(seeds[c]%7))
				if i%3 == 0 {
					set := []int{c*1000 + i}
					id := rec.Call(c, chaos.RegisterOp{Tok: tok, Write: true, Set: set})
					err := fc.Write(t.Context(), tok, set)
					if err != nil && !errors.Is(err, chaos.ErrStale) {
						t.Error(err)
						return
					}
					rec.Return(id, chaos.RegisterResult{Accepted: err == nil})
					continue
				}
				id := rec.Call(c, chaos.RegisterOp{Tok: tok})
				got, err := fc.Read(t.Context(), tok)
				if err != nil && !errors.Is(err, chaos.ErrStale) {
					t.Error(err)
					return
				}
				rec.Return(id, chaos.RegisterResult{Accepted: err == nil, Set: got})
			}
		})
	}
	wg.Wait()
	rec.Check(t, chaos.RegisterModel, porcupine.Ok, 30e9)
	require.Empty(t, chaos.StaleAccepted(s.Log()))
}

func TestMutexModel(t *testing.T) {
	m := chaos.MutexModel.ToModel()
	acq := func(c int, call, ret int64, out chaos.Outcome) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: chaos.MutexOp{Client: c}, Call: call, Output: out, Return: ret}
	}
	rel := func(c int, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: chaos.MutexOp{Client: c, Release: true}, Call: call, Output: chaos.OK, Return: ret}
	}
	ok := []porcupine.Operation{acq(0, 0, 10, chaos.OK), acq(1, 5, 30, chaos.OK), rel(0, 20, 25), rel(1, 40, 45), acq(2, 1, 50, chaos.Fail)}
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(m, ok, 0))
	// Both hold at once: 1 acquired before 0 released (a paused holder).
	bad := []porcupine.Operation{acq(0, 0, 10, chaos.OK), acq(1, 11, 20, chaos.OK), rel(0, 30, 35), rel(1, 40, 45)}
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(m, bad, 0))
	// An acquire of unknown outcome may have taken the lock or not.
	unk := []porcupine.Operation{acq(0, 0, 100, chaos.Unknown), acq(1, 5, 10, chaos.OK), rel(1, 20, 25)}
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(m, unk, 0))
}

func TestCounterModel(t *testing.T) {
	m := chaos.CounterModel.ToModel()
	op := func(c int, inc bool, call, ret int64, out chaos.Outcome, v int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: chaos.CounterOp{Key: "k", Inc: inc}, Call: call, Output: chaos.CounterResult{Outcome: out, Value: v}, Return: ret}
	}
	ok := []porcupine.Operation{op(0, true, 0, 10, chaos.OK, 1), op(1, true, 5, 100, chaos.Unknown, 0), op(2, true, 20, 30, chaos.Fail, 0), op(0, false, 40, 50, chaos.OK, 1), op(0, true, 60, 70, chaos.OK, 2)}
	require.Equal(t, porcupine.Ok, porcupine.CheckOperationsTimeout(m, ok, 0))
	// A lost update: two increments both report 1.
	bad := []porcupine.Operation{op(0, true, 0, 10, chaos.OK, 1), op(1, true, 20, 30, chaos.OK, 1)}
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(m, bad, 0))
}
