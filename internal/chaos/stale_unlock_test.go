package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// staleUnlockResult counts one session's L10 trials.
type staleUnlockResult struct {
	trials, lostResponses, deletedNewer int
}

// TestL10StaleUnlockRetry is L10 (F8): an Unlock's response is lost (its
// context ends while the response is delayed, after the delete took
// effect), the same session locks again through another handle, and the old
// handle retries its Unlock. The retry must never delete the newer hold's
// key. etcd's concurrency.Mutex runs the same steps as a control: two of its
// handles on one session share one key, so the retry deletes the newer hold
// (reported, not judged).
//
// The plan's 100 trials are scaled to 40 (4 sessions side by side, each
// through its own proxy, 10 trials each); CHAOS_L10_TRIALS sets the trials
// per session.
func TestL10StaleUnlockRetry(t *testing.T) {
	per := envInt(t, "CHAOS_L10_TRIALS", 10)
	const sessions = 4
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	var (
		mu        sync.Mutex
		ours, raw staleUnlockResult
		wg        sync.WaitGroup
	)
	for k := range sessions + 1 {
		control := k == sessions
		wg.Go(func() {
			res, err := staleUnlockTrials(t, cli, fmt.Sprintf("%s%d/lock", pfx, k), per, control)
			if err != nil {
				t.Errorf("session %d: %v", k, err)
			}
			mu.Lock()
			defer mu.Unlock()
			sum := &ours
			if control {
				sum = &raw
			}
			sum.trials += res.trials
			sum.lostResponses += res.lostResponses
			sum.deletedNewer += res.deletedNewer
		})
	}
	wg.Wait()
	chaos.Report(t, "L10 coordkit", "trials", ours.trials, "unlockResponsesLost", ours.lostResponses, "newerHoldDeleted", ours.deletedNewer)
	chaos.Report(t, "L10 control (etcd concurrency.Mutex)", "trials", raw.trials, "unlockResponsesLost", raw.lostResponses, "newerHoldDeleted", raw.deletedNewer)
	chaos.RequireAtLeast(t, "trials", ours.trials, sessions*per)
	chaos.RequireBit(t, "Unlock response lost", ours.lostResponses)
	if ours.deletedNewer != 0 {
		t.Errorf("a stale Unlock deleted a newer hold %d times", ours.deletedNewer)
	}
}

type locker interface {
	Lock(context.Context) error
	Unlock(context.Context) error
}

func staleUnlockTrials(t *testing.T, direct *clientv3.Client, name string, trials int, control bool) (staleUnlockResult, error) {
	var res staleUnlockResult
	px := chaos.NewProxy(t, srv.Endpoints()[0])
	s := testutil.Session(t, px.Client(t), 10)
	for range trials {
		res.trials++
		var a, b locker
		var bKey func() string
		if control {
			ma, mb := concurrency.NewMutex(s, name), concurrency.NewMutex(s, name)
			a, b, bKey = ma, mb, mb.Key
		} else {
			ma, mb := mutex.New(s, name), mutex.New(s, name)
			a, b, bKey = ma, mb, mb.Key
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		if err := a.Lock(ctx); err != nil {
			cancel()
			return res, fmt.Errorf("a.Lock: %w", err)
		}
		px.DelayResponses(400*time.Millisecond, 0)
		uctx, ucancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := a.Unlock(uctx)
		ucancel()
		if errors.Is(err, context.DeadlineExceeded) {
			res.lostResponses++
		}
		px.Undelay()
		if err := b.Lock(ctx); err != nil {
			cancel()
			return res, fmt.Errorf("b.Lock: %w", err)
		}
		key := bKey()
		a.Unlock(ctx) // the retry: it must not touch b's hold
		if !exists(t, direct, key) {
			res.deletedNewer++
			if !control {
				t.Errorf("the retried Unlock deleted the newer hold's key %s", key)
			}
		} else if err := b.Unlock(ctx); err != nil {
			cancel()
			return res, fmt.Errorf("b.Unlock: %w", err)
		}
		cancel()
	}
	return res, nil
}
