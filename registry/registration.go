package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/coordkit/coordkit/internal/retry"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Key returns the instance's key in etcd.
func (r *Registration) Key() string { return r.key }

// Instance returns the instance as it is to be stored, after the last
// Update or SetState.
func (r *Registration) Instance() Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.inst
	in.Metadata = maps.Clone(in.Metadata)
	return in
}

// Status returns what the registration knows of its key now.
func (r *Registration) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Done returns a channel that is closed when the registration has ended:
// after Deregister, or when the client was closed or the session given
// with [WithSession] ended. [Registration.Err] then says which. The
// registration closes it; it is never closed while the key is kept.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Err returns nil while the registration keeps its key, and once it has
// ended, why: [ErrDeregistered], [ErrClosed] or [ErrSessionExpired].
func (r *Registration) Err() error {
	select {
	case <-r.done:
	default:
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Update replaces the instance's metadata and weight, and blocks until the
// new value is stored. If ctx ends first it returns an error satisfying
// errors.Is(err, ctx.Err()), and the value is still stored as soon as etcd
// can be reached. It returns [ErrDeregistered] after Deregister, and the
// registration's error if it has ended. It panics if weight is negative.
func (r *Registration) Update(ctx context.Context, metadata map[string]string, weight int) error {
	if weight < 0 {
		panic("registry: negative Weight")
	}
	return r.change(ctx, func(in *Instance) {
		in.Metadata, in.Weight = maps.Clone(metadata), weight
	})
}

// SetState stores the instance's state, as Update does: [Draining] tells
// clients to send it no new work, for example before the process exits.
func (r *Registration) SetState(ctx context.Context, s State) error {
	return r.change(ctx, func(in *Instance) { in.State = s })
}

// change applies f to the instance, wakes the loop and waits until the
// result is stored.
func (r *Registration) change(ctx context.Context, f func(*Instance)) error {
	r.mu.Lock()
	if r.deregging {
		r.mu.Unlock()
		return ErrDeregistered
	}
	f(&r.inst)
	r.gen++
	gen := r.gen
	if r.wake != nil {
		r.wake()
	}
	r.mu.Unlock()
	return r.waitStored(ctx, gen)
}

// waitStored blocks until the instance's generation gen is stored, the
// registration ends or ctx ends.
func (r *Registration) waitStored(ctx context.Context, gen int64) error {
	for {
		r.mu.Lock()
		stored, err, ch := r.stored, r.err, r.storedc
		r.mu.Unlock()
		switch {
		case err != nil:
			return err
		case stored >= gen:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Deregister stops keeping the key and deletes it. It wins any race with a
// re-registration: it first stops the loop that puts the key and waits
// for it, then revokes the registration's own leases and deletes the key,
// so once it returns nil the key is gone and this registration does not
// put it back. It blocks until then, sending etcd's transient errors
// again, or until ctx ends, returning an error satisfying
// errors.Is(err, ctx.Err()); the key is then left on a lease no longer
// kept alive, so it goes within the TTL ([WithSession]: when the caller's
// session ends). A second call returns [ErrDeregistered].
//
// The leases revoked are the current one and each earlier one lost within
// the last three TTLs that etcd has not said is gone: a put answered too
// late for the loop (a partition) and applied after the delete would
// otherwise bring the key back on it until it expires. With [WithSession]
// the lease is the caller's and is not revoked, so such a put outlives
// Deregister on it.
func (r *Registration) Deregister(ctx context.Context) error {
	r.mu.Lock()
	if r.deregging {
		r.mu.Unlock()
		return ErrDeregistered
	}
	r.deregging = true
	r.mu.Unlock()
	r.stop()
	<-r.done
	r.end(ErrDeregistered)

	var errs []error
	for _, id := range r.ownLeases() {
		err := retry.Do(ctx, func(ctx context.Context) error {
			_, err := r.cli.Revoke(ctx, id)
			return err
		})
		if err != nil && !isLeaseNotFound(err) {
			errs = append(errs, fmt.Errorf("registry: deregister %q: revoke lease %x: %w", r.key, id, err))
		}
	}
	err := retry.Do(ctx, func(ctx context.Context) error {
		_, err := r.cli.Delete(ctx, r.key)
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("registry: deregister %q: %w", r.key, err))
	}
	return errors.Join(errs...)
}

// ownLeases returns the leases Deregister revokes, the current one first,
// and stops keeping the current one alive. The loop has ended.
func (r *Registration) ownLeases() []clientv3.LeaseID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.own {
		return nil
	}
	var ids []clientv3.LeaseID
	var cur clientv3.LeaseID
	if r.sess != nil {
		r.sess.Orphan()
		cur = r.sess.Lease()
		ids = append(ids, cur)
	}
	now := time.Now()
	for _, o := range r.orphans {
		if now.Sub(o.at) <= r.orphanLife() && o.id != cur {
			ids = append(ids, o.id)
		}
	}
	return ids
}

// isLeaseNotFound reports whether err says the lease is already gone.
func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound)
}
