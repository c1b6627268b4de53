package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/examples/internal/demo"
	"github.com/coordkit/coordkit/registry"
)

// tourRegistry registers each worker as an instance of one service and
// follows the service with a View, as a client or a gateway would.
func tourRegistry(ctx context.Context, env *demo.Env, ws []*worker) error {
	service := root + "services/web"
	v := registry.Watch(ws[0].cli, service)
	defer v.Close()
	var regs []*registry.Registration
	for i, w := range ws {
		r, err := registry.Register(ctx, w.cli, registry.Instance{
			Service: service, ID: w.name, Addr: fmt.Sprintf("10.0.0.%d:8080", i+1),
		}, registry.WithSession(w.s))
		if err != nil {
			return err
		}
		regs = append(regs, r)
	}
	if err := waitView(ctx, v, func(s registry.Snapshot) bool { return serving(s) == 3 }); err != nil {
		return err
	}
	env.Say("  the View sees %d instances, each on its worker's lease", len(v.Snapshot().Instances))
	if err := regs[1].SetState(ctx, registry.Draining); err != nil {
		return err
	}
	if err := waitView(ctx, v, func(s registry.Snapshot) bool { return serving(s) == 2 }); err != nil {
		return err
	}
	env.Say("  bob drains before a restart: 2 instances take new work")
	if err := regs[1].Deregister(ctx); err != nil {
		return err
	}
	if err := waitView(ctx, v, func(s registry.Snapshot) bool { return len(s.Instances) == 2 }); err != nil {
		return err
	}
	env.Say("  bob deregisters: gone from the View at once, not a TTL later")
	for _, r := range []*registry.Registration{regs[0], regs[2]} {
		if err := r.Deregister(ctx); err != nil {
			return err
		}
	}
	return nil
}

// serving counts the instances that take new work.
func serving(s registry.Snapshot) int {
	n := 0
	for _, in := range s.Instances {
		if in.State == registry.Serving {
			n++
		}
	}
	return n
}

// waitView waits until ok holds for v's snapshot, for at most 10 s.
func waitView(ctx context.Context, v *registry.View, ok func(registry.Snapshot) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !ok(v.Snapshot()) {
		select {
		case <-v.Changes():
		case <-v.Done():
			return v.Err()
		case <-ctx.Done():
			return fmt.Errorf("the View did not show the change: %w", ctx.Err())
		}
	}
	return nil
}

// limits is the typed configuration the workers follow.
type limits struct {
	MaxConns int `json:"max_conns"`
}

func decodeLimits(b []byte) (limits, error) {
	var l limits
	if err := json.Unmarshal(b, &l); err != nil {
		return l, err
	}
	if l.MaxConns < 1 {
		return l, fmt.Errorf("max_conns must be at least 1, got %d", l.MaxConns)
	}
	return l, nil
}

// tourConfig publishes a configuration, has a worker follow it, refuses a
// bad value and rolls back.
func tourConfig(ctx context.Context, env *demo.Env, ws []*worker) error {
	name := root + "config/limits"
	valid := config.WithValidator(func(b []byte) error { _, err := decodeLimits(b); return err })
	if _, err := config.Publish(ctx, ws[0].cli, name, []byte(`{"max_conns":10}`), valid); err != nil {
		return err
	}
	w, err := config.Watch(ctx, ws[1].cli, name, decodeLimits)
	if err != nil {
		return err
	}
	defer w.Close()
	env.Say("  bob runs with max_conns=%d (version %d)", w.Load().MaxConns, w.Version())
	v2, err := config.Publish(ctx, ws[0].cli, name, []byte(`{"max_conns":20}`), valid)
	if err != nil {
		return err
	}
	if err := w.WaitFor(ctx, v2); err != nil {
		return err
	}
	env.Say("  ann publishes max_conns=20: bob reloads it live (version %d)", w.Version())
	_, err = config.Publish(ctx, ws[0].cli, name, []byte(`{"max_conns":0}`), valid)
	if !errors.Is(err, config.ErrInvalid) {
		return fmt.Errorf("a bad value was not refused: %v", err)
	}
	env.Say("  max_conns=0 is refused by the validator before anything is written")
	v3, err := config.Rollback(ctx, ws[2].cli, name, 1, valid)
	if err != nil {
		return err
	}
	if err := w.WaitFor(ctx, v3); err != nil {
		return err
	}
	if got := w.Load().MaxConns; got != 10 {
		return fmt.Errorf("after the rollback bob runs with max_conns=%d, want 10", got)
	}
	env.Say("  cid rolls back to version 1: bob runs with max_conns=%d again (version %d)", w.Load().MaxConns, w.Version())
	return nil
}
