//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// counterWork is the L4/L5 workload's shared state.
type counterWork struct {
	c       *chaos.ProcCluster
	rec     *chaos.Recorder
	store   *chaos.FenceStore
	name    string
	counter string
	ttl     int

	acquired, okInc, unknownInc, failedInc, hangs, lockErrs atomic.Int64

	mu         sync.Mutex // guards lockErrMsg, last, maxGap
	lockErrMsg map[string]int
	last       time.Time     // last acquisition
	maxGap     time.Duration // longest time between two acquisitions
	gapAt      string        // when it was, as ss.mmm..ss.mmm on the wall clock
	slowest    map[string]time.Duration
}

// took records how long a step of the workload took, keeping the slowest.
func (w *counterWork) took(what string, since time.Time) {
	d := time.Since(since)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.slowest == nil {
		w.slowest = map[string]time.Duration{}
	}
	if d > w.slowest[what] {
		w.slowest[what] = d.Round(time.Millisecond)
	}
}

func (w *counterWork) acquiredNow() {
	w.acquired.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if !w.last.IsZero() {
		if g := now.Sub(w.last); g > w.maxGap {
			w.maxGap = g
			w.gapAt = w.last.Format("05.000") + ".." + now.Format("05.000")
		}
	}
	w.last = now
}

func (w *counterWork) lockErr(err error) {
	w.lockErrs.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lockErrMsg == nil {
		w.lockErrMsg = map[string]int{}
	}
	w.lockErrMsg[err.Error()]++
}

// run runs clients locked-increment loops until ctx ends, and returns the
// acquisitions made.
func (w *counterWork) run(ctx context.Context, t *testing.T, clients []*clientv3.Client) int64 {
	before := w.acquired.Load()
	var wg sync.WaitGroup
	for i, cli := range clients {
		wg.Go(func() { w.loop(ctx, t, i, cli) })
	}
	wg.Go(func() { w.reads(ctx, len(clients), clients[0]) })
	testutil.Within(t, afterRun(ctx), "the counter loops", wg.Wait)
	return w.acquired.Load() - before
}

func (w *counterWork) loop(ctx context.Context, t *testing.T, id int, cli *clientv3.Client) {
	fc := chaos.NewFenceClient(w.store.URL(), id)
	defer fc.Close()
	ss := newSessions(cli, concurrency.WithTTL(w.ttl), concurrency.WithContext(ctx))
	defer ss.close()
	var m *mutex.Mutex // one handle per session: its next Lock replaces a key a failed Unlock left
	for ctx.Err() == nil {
		s, fresh, err := ss.next()
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if fresh {
			m = mutex.New(s, w.name)
		}
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		began := time.Now()
		err = m.Lock(lctx)
		lockTook := time.Since(began)
		w.took("Lock", began)
		lctxErr := lctx.Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case lctxErr != nil:
			w.hangs.Add(1)
			t.Errorf("client %d: Lock blocked for 15 s: %v", id, err)
			continue
		case errors.Is(err, context.DeadlineExceeded):
			// An internal timeout must not pass for the caller's deadline.
			t.Errorf("client %d: Lock returned a deadline error after %v, before its 15 s deadline: %v", id, lockTook.Round(time.Millisecond), err)
			continue
		}
		if err != nil {
			w.lockErr(err)
			continue
		}
		w.acquiredNow()
		w.step(ctx, id, cli, m, fc)
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		began = time.Now()
		m.Unlock(uctx)
		w.took("Unlock", began)
		cancel()
	}
}

// step is one locked increment (§4b) and one fenced external write.
func (w *counterWork) step(ctx context.Context, id int, cli *clientv3.Client, m *mutex.Mutex, fc *chaos.FenceClient) {
	tok, done := m.Token(), m.Done()
	// A request caught by a leader kill (a proposal forwarded to the dead
	// leader) hangs until it times out; a client gives it 2 s, after which
	// the increment's outcome is unknown. With 5 s, as at first, every kill
	// stalled all holders 5 s behind one stuck Txn.
	octx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fc.Begin(octx, tok)
	op := w.rec.Call(id, chaos.CounterOp{Key: w.counter, Inc: true})
	began := time.Now()
	resp, err := cli.Get(octx, w.counter)
	w.took("Get", began)
	if err != nil {
		w.failedInc.Add(1)
		w.rec.Return(op, chaos.CounterResult{Outcome: chaos.Fail})
		return
	}
	var v, mr int64
	if len(resp.Kvs) > 0 {
		v, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		mr = resp.Kvs[0].ModRevision
	}
	began = time.Now()
	tr, err := m.Txn(octx, clientv3.Compare(clientv3.ModRevision(w.counter), "=", mr)).
		Then(clientv3.OpPut(w.counter, strconv.FormatInt(v+1, 10))).Commit()
	w.took("Txn", began)
	switch {
	case err != nil:
		w.unknownInc.Add(1)
		w.rec.Unknown(op, chaos.CounterResult{Outcome: chaos.Unknown})
	case !tr.Succeeded:
		w.failedInc.Add(1)
		w.rec.Return(op, chaos.CounterResult{Outcome: chaos.Fail})
	default:
		w.okInc.Add(1)
		w.rec.Return(op, chaos.CounterResult{Outcome: chaos.OK, Value: v + 1})
	}
	select {
	case <-done:
		fc.End(octx, tok)
	default:
		fc.Write(octx, tok, []int{id})
	}
}

// reads reads the counter every 200 ms as client id.
func (w *counterWork) reads(ctx context.Context, id int, cli *clientv3.Client) {
	for sleepCtx(ctx, 200*time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		op := w.rec.Call(id, chaos.CounterOp{Key: w.counter})
		resp, err := cli.Get(rctx, w.counter)
		cancel()
		if err != nil {
			w.rec.Unknown(op, chaos.CounterResult{Outcome: chaos.Unknown})
			continue
		}
		var v int64
		if len(resp.Kvs) > 0 {
			v, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
		}
		w.rec.Return(op, chaos.CounterResult{Outcome: chaos.OK, Value: v})
	}
}
