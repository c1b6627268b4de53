//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/mutex"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestL11QuorumLoss is L11: while a holder (TTL 3 s) writes to a recording
// fence store every 50 ms and a waiter queues, two of the three etcd
// members (the leader and one follower) are SIGSTOPped for 10 s. The holder
// cannot confirm its lease, so its Done must close on its own clock during
// the outage, and it must write nothing after; once quorum is back it must
// re-acquire with a higher token. 0 overlaps and 0 late ends in the store.
// Trials repeat for the run's duration (at least 2).
func TestL11QuorumLoss(t *testing.T) {
	d := runDuration(t)
	c := chaos.NewProcCluster(t, 3)
	store := chaos.NewFenceStore(t, chaos.Recording)
	name := "/chaos/l11/lock"
	trials, doneInOutage, reacquired := 0, 0, 0
	deadline := time.Now().Add(d)
	for k := 0; k < 2 || time.Now().Before(deadline); k++ {
		trials++
		err := quorumTrial(t, c, store, name, k)
		switch {
		case errors.Is(err, errNotInOutage):
			t.Errorf("trial %d: %v", k, err)
		case err != nil:
			t.Fatalf("trial %d: %v", k, err)
		default:
			doneInOutage++
			reacquired++
		}
	}
	log := store.Log()
	overlaps, late := chaos.Overlaps(log), chaos.LateEnds(log)
	chaos.Report(t, "L11", "trials", trials, "holderDoneDuringOutage", doneInOutage, "reacquiredHigher", reacquired,
		"overlaps", len(overlaps), "lateEnds", len(late))
	if len(overlaps) != 0 || len(late) != 0 {
		t.Errorf("holder acted after its successor began: %d overlaps, %d late ends", len(overlaps), len(late))
	}
}

var errNotInOutage = errors.New("the holder's Done did not close during the outage")

func quorumTrial(t *testing.T, c *chaos.ProcCluster, store *chaos.FenceStore, name string, k int) error {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	hcli := c.NewClient(t)
	hs, err := concurrency.NewSession(hcli, concurrency.WithTTL(3))
	if err != nil {
		return err
	}
	defer hs.Close()
	ws, err := concurrency.NewSession(c.NewClient(t), concurrency.WithTTL(30))
	if err != nil {
		return err
	}
	defer ws.Close()
	holder, waiter := mutex.New(hs, name), mutex.New(ws, name)
	if err := holder.Lock(ctx); err != nil {
		return err
	}
	tok1 := holder.Token()
	hfc, wfc := chaos.NewFenceClient(store.URL(), 2*k), chaos.NewFenceClient(store.URL(), 2*k+1)
	defer hfc.Close()
	defer wfc.Close()
	hfc.Begin(ctx, tok1)
	doneAt := make(chan time.Time, 1)
	go func() {
		done := holder.Done()
		for {
			select {
			case <-done:
				hfc.End(ctx, tok1)
				doneAt <- time.Now()
				return
			case <-time.After(50 * time.Millisecond):
			}
			select {
			case <-done:
				continue
			default:
			}
			hfc.Write(ctx, tok1, []int{2 * k})
		}
	}()
	wgot := make(chan error, 1)
	go func() {
		err := waiter.Lock(ctx)
		if err == nil {
			tok := waiter.Token()
			wfc.Begin(ctx, tok)
			wfc.Write(ctx, tok, []int{2*k + 1})
			err = waiter.Unlock(ctx)
		}
		wgot <- err
	}()
	for len(keysUnder(t, c.Client(), name)) < 2 {
		time.Sleep(5 * time.Millisecond)
	}

	l := c.Leader(ctx)
	if l < 0 {
		return errors.New("no leader")
	}
	other := (l + 1) % c.Size()
	c.Stop(l)
	c.Stop(other)
	time.Sleep(10 * time.Second)
	c.Cont(l)
	c.Cont(other)
	resumed := time.Now()

	var at time.Time
	select {
	case at = <-doneAt:
	case <-ctx.Done():
		return errors.New("the holder's Done never closed")
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	select {
	case err := <-wgot:
		if err != nil {
			return fmt.Errorf("waiter: %w", err)
		}
	case <-time.After(afterRun(ctx)):
		return errors.New("the waiter's Lock never returned")
	}
	if err := holder.Unlock(ctx); !errors.Is(err, mutex.ErrLost) && !errors.Is(err, mutex.ErrSessionExpired) {
		return fmt.Errorf("holder's Unlock after the outage = %v, want ErrLost or ErrSessionExpired", err)
	}
	// Re-acquire, on a new session if the old one has ended.
	s2 := hs
	select {
	case <-hs.Done():
		if s2, err = concurrency.NewSession(hcli, concurrency.WithTTL(3)); err != nil {
			return err
		}
		defer s2.Close()
	default:
	}
	again := mutex.New(s2, name)
	if err := again.Lock(ctx); err != nil {
		return fmt.Errorf("re-acquire: %w", err)
	}
	tok2 := again.Token()
	if err := again.Unlock(ctx); err != nil {
		return err
	}
	if tok2 <= tok1 {
		return fmt.Errorf("re-acquired with token %d, not above the lost hold's %d", tok2, tok1)
	}
	if !at.Before(resumed) {
		return errNotInOutage
	}
	return nil
}
