//go:build chaos

package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	"github.com/coordkit/coordkit/semaphore"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// errNoSlot says every slot was taken by a live grant: more grants than
// permits.
var errNoSlot = errors.New("no free slot")

// claimSlot claims the first free slot for the grant tok, in a transaction
// guarded by the grant, with the slot's key on the grant's lease (so that
// it goes when the grant's key does). It returns the slot, or -1 and
// errNoSlot if the grant still holds and every slot is taken, or another
// error if the grant is gone or etcd could not be reached.
func claimSlot(ctx context.Context, sem *semaphore.Semaphore, s *concurrency.Session, slotKey func(int) string, slots int, tok int64) (int, error) {
	for i := range slots {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := sem.Txn(tctx, clientv3.Compare(clientv3.CreateRevision(slotKey(i)), "=", 0)).
			Then(clientv3.OpPut(slotKey(i), strconv.FormatInt(tok, 10), clientv3.WithLease(s.Lease()))).Commit()
		cancel()
		if err != nil {
			return -1, err
		}
		if resp.Succeeded {
			return i, nil
		}
	}
	// Was the guard false because the grant is gone?
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := sem.Txn(tctx).Commit()
	if err != nil {
		return -1, err
	}
	if !resp.Succeeded {
		return -1, semaphore.ErrLost
	}
	return -1, errNoSlot
}

// freeSlot deletes the slot key if it is still tok's, retrying through
// leader changes for up to 20 s, and reports whether it succeeded.
func freeSlot(ctx context.Context, cli *clientv3.Client, key string, tok int64) bool {
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := cli.Txn(rctx).If(clientv3.Compare(clientv3.Value(key), "=", strconv.FormatInt(tok, 10))).
			Then(clientv3.OpDelete(key)).Commit()
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// slotWrites adds elements to a slot's fence store with tok every 200 ms for
// hold, and for 4 s more once done has closed: a holder that does not
// notice its loss in time. It returns the writes rejected as
// stale, those made after done closed, the acknowledged elements, and the
// other errors.
func slotWrites(ctx context.Context, fc *chaos.FenceClient, tok int64, x int, done <-chan struct{}, hold time.Duration) (stale, late int, acked []int, errs int) {
	end, lost := time.Now().Add(hold), false
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		select {
		case <-done:
			late++
			if !lost {
				// A holder that has not noticed its loss carries on for
				// another 4 s, long enough for a successor to claim its
				// slot and write.
				lost, end = true, time.Now().Add(4*time.Second)
			}
		default:
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		v := x*100 + i
		set, err := fc.Read(wctx, tok)
		if err == nil {
			err = fc.Write(wctx, tok, append(slices.Clone(set), v))
		}
		cancel()
		switch {
		case err == nil:
			acked = append(acked, v)
		case errors.Is(err, chaos.ErrStale):
			stale++
		default:
			errs++
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return stale, late, acked, errs
}

// semWeightOf reads the weight from a semaphore key's JSON value; a key
// that is not a participant's counts as holding every permit.
func semWeightOf(kv *mvccpb.KeyValue) int {
	var v struct {
		Weight int `json:"weight"`
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil || v.Weight < 1 {
		return 1 << 20
	}
	return v.Weight
}
