package main

import (
	"context"
	"fmt"
	"time"

	"github.com/coordkit/coordkit/election"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func electionWorkloads() []workload {
	return []workload{
		{name: "election/campaign-resign", unit: "terms", ours: lockLoop(1, ourCandidate), theirs: lockLoop(1, etcdCandidate), vs: "etcd Election"},
		// With several candidates the latency is the graceful handoff: from
		// the leader's Resign returning to the next Campaign returning.
		{name: "election/handoff-W2", unit: "terms", ours: lockLoop(2, ourCandidate), theirs: lockLoop(2, etcdCandidate), vs: "etcd Election"},
		{name: "election/handoff-W5", unit: "terms", ours: lockLoop(5, ourCandidate), theirs: lockLoop(5, etcdCandidate), vs: "etcd Election"},
		// The latency is from the leader's crash to the next candidate's
		// Campaign returning; the rate is of trials, not worth comparing.
		{name: "election/failover-TTL2", unit: "failovers", ours: failover(ourCandidate), theirs: failover(etcdCandidate), vs: "etcd Election"},
	}
}

// candidate adapts an election to the locker that lockLoop drives:
// Lock campaigns and Unlock resigns.
type candidate struct {
	campaign func(ctx context.Context, val string) error
	resign   func(ctx context.Context) error
}

func (c candidate) Lock(ctx context.Context) error   { return c.campaign(ctx, "bench") }
func (c candidate) Unlock(ctx context.Context) error { return c.resign(ctx) }

func ourCandidate(s *concurrency.Session, name string) locker {
	e := election.New(s, name)
	return candidate{e.Campaign, e.Resign}
}

func etcdCandidate(s *concurrency.Session, name string) locker {
	e := concurrency.NewElection(s, name)
	return candidate{e.Campaign, e.Resign}
}

// failoverTTL is the lease TTL of the crashing leader, in seconds.
const failoverTTL = 2

// failover measures how long a waiting candidate takes to lead after the
// leader crashes. The crash closes the leader's client: its keep-alives
// stop and its lease is not revoked, so the server expires it after the
// TTL, as it would for a killed process. Each trial takes about a TTL, so
// a side runs at least one trial whatever -duration says.
func failover(mk newLocker) side {
	return func(ctx context.Context, e *env) (result, error) {
		var r result
		start := time.Now()
		for i := 0; r.ops == 0 || time.Since(start) < e.duration; i++ {
			d, err := failoverTrial(ctx, e, mk, fmt.Sprintf("%select%d", e.prefix, i))
			if err != nil {
				return r, err
			}
			r.lat = append(r.lat, d)
			r.ops++
		}
		r.elapsed = time.Since(start)
		return r, nil
	}
}

func failoverTrial(ctx context.Context, e *env, mk newLocker, name string) (time.Duration, error) {
	lcli, err := e.client()
	if err != nil {
		return 0, err
	}
	ls, err := concurrency.NewSession(lcli, concurrency.WithTTL(failoverTTL))
	if err != nil {
		return 0, err
	}
	if err := mk(ls, name).Lock(ctx); err != nil {
		return 0, err
	}
	fcli, err := e.client()
	if err != nil {
		return 0, err
	}
	fs, err := concurrency.NewSession(fcli, concurrency.WithTTL(10))
	if err != nil {
		return 0, err
	}
	defer fs.Close()
	next := mk(fs, name)
	tctx, cancel := context.WithTimeout(ctx, 10*failoverTTL*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- next.Lock(tctx) }()
	// Crash only once the next candidate is in line.
	for {
		resp, err := fcli.Get(tctx, name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		if resp.Count == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	lcli.Close()
	if err := <-got; err != nil {
		return 0, fmt.Errorf("failover: %w", err)
	}
	d := time.Since(t0)
	return d, next.Unlock(ctx)
}
