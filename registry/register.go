package registry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/follow"
	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Registration keeps one instance registered until [Registration.Deregister].
// It is safe for concurrent use and must not be copied.
type Registration struct {
	cli  *clientv3.Client
	key  string
	ttl  int
	own  bool // the registration grants its leases, rather than borrowing one
	obs  *observe.Observer
	stop context.CancelFunc
	done chan struct{} // closed when run returns

	mu        sync.Mutex         // guards the fields below
	inst      Instance           // what should be stored
	gen       int64              // bumped by every change to inst
	stored    int64              // the gen last stored, on a live lease
	storedc   chan struct{}      // closed and replaced when stored or err changes
	status    Status             // what the caller sees of the loop
	wake      context.CancelFunc // ends the loop's current wait, if any
	sess      *concurrency.Session
	gone      bool // etcd said sess's lease is gone before its keep-alive noticed
	deregging bool
	since     time.Time // when the key was first stored on the current lease
	// orphans are the registration's own earlier leases that etcd may
	// still hold: a put sent on one and applied late would bring the key
	// back on it, so Deregister revokes them too.
	orphans []orphan
	err     error // why run ended; nil while it runs
}

// orphan is a lease the registration stopped keeping alive, and when.
type orphan struct {
	id clientv3.LeaseID
	at time.Time
}

// orphanLife is how long after it was orphaned a lease is taken to have
// expired on etcd: its TTL since the last keep-alive, with room for a
// keep-alive applied late and for leader elections, which extend leases.
func (r *Registration) orphanLife() time.Duration { return 3 * time.Duration(r.ttl) * time.Second }

// Status is what a [Registration] knows of its key.
type Status struct {
	// Registered is true while the key is stored on a lease being kept
	// alive, as far as this process knows.
	Registered bool
	// Lease is the lease the key was last stored on.
	Lease clientv3.LeaseID
	// Err is the last error met while (re-)registering or watching the
	// key (etcd's refusal of the watch included, which is retried with a
	// growing pause), nil once the key is stored again.
	Err error
}

// Register stores inst under inst.Key() on a lease kept alive, and keeps it
// there until [Registration.Deregister]: after the lease is lost (revoked,
// or expired during an outage longer than its TTL) it grants a new one and
// stores the key again, and if someone else deletes the key it puts it
// back, pacing its attempts with a jittered backoff and never giving up.
// Only a closed client ([ErrClosed]) or the end of the session given with
// [WithSession] ([ErrSessionExpired]) end it.
//
// Register blocks until the key is first stored, and returns an error if
// ctx ends first (satisfying errors.Is(err, ctx.Err())) or if etcd refuses
// the request; then nothing is left behind. ctx bounds only this first
// registration: the registration then lives until Deregister. It panics if
// inst has no Service or Addr, or a negative Weight.
func Register(ctx context.Context, cli *clientv3.Client, inst Instance, opts ...Option) (*Registration, error) {
	o := options{ttl: defaultTTL}
	for _, opt := range opts {
		opt.apply(&o)
	}
	inst = inst.normalize()
	lctx, stop := context.WithCancel(context.Background())
	r := &Registration{
		cli: cli, key: inst.Key(), ttl: o.ttl, own: o.session == nil, stop: stop,
		done: make(chan struct{}), inst: inst, gen: 1, storedc: make(chan struct{}),
		sess: o.session, obs: o.obs,
	}
	go r.run(lctx)
	if err := r.waitStored(ctx, 1); err != nil {
		// Bounded: a put sent before ctx ended may yet be applied, on a
		// lease that then expires within the TTL if etcd cannot be reached.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(r.ttl)*time.Second)
		defer cancel()
		if derr := r.Deregister(dctx); derr != nil && !errors.Is(derr, ErrDeregistered) && ctx.Err() == nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return r, nil
}

// run keeps the key stored until ctx ends or the registration cannot go on.
func (r *Registration) run(ctx context.Context) {
	defer close(r.done)
	f := follow.New(r.cli, r.key, 0, follow.Observed(r.obs, observe.KindRegistry))
	defer f.Close()
	pace := retry.New()
	need := true // the key must be put (again)
	for {
		sess, fresh, err := r.session(ctx)
		need = need || fresh
		if err == nil && need {
			err = r.put(ctx, sess, f)
			need = err != nil
		}
		if err == nil {
			wctx, release := r.waitCtx(ctx, sess)
			evs, relist, nerr := f.Next(wctx)
			// Read before release, which ends wctx: only a wait that was
			// ended from outside is a wake-up, not any error Next returns.
			woken := wctx.Err() != nil
			release()
			switch {
			case nerr == nil && relist:
				need, err = r.check(ctx, sess, f)
			case nerr == nil:
				need = deleted(evs)
			case ctx.Err() == nil && woken && errors.Is(nerr, context.Canceled):
				// Woken by a change to the instance or by the session's end.
			default:
				err = nerr
			}
			if err == nil {
				// Only a wait that worked resets the pace: a put that
				// succeeds before a refused watch must not.
				pace.Reset()
			}
			need = need || r.changed()
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if r.fail(err) {
			return
		}
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			r.dropSession() // revoked: waiting for the keep-alive to notice is slower
		}
		need = true
		if pace.PauseOr(ctx, r.cli.Ctx().Done(), func() error { return errs.Closed }) != nil {
			if ctx.Err() == nil {
				r.end(ErrClosed)
			}
			return
		}
	}
}

// dropSession makes the next call to session grant a new lease, or end a
// borrowed session's registration.
func (r *Registration) dropSession() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone = true
}

// check reads the key after the follower may have missed changes to it,
// and reports whether it must be put again: it is gone, or on another lease.
func (r *Registration) check(ctx context.Context, sess *concurrency.Session, f *follow.Follower) (bool, error) {
	resp, err := r.cli.Get(ctx, r.key)
	if err != nil {
		return true, err
	}
	f.Reset(resp.Header.Revision)
	return len(resp.Kvs) == 0 || clientv3.LeaseID(resp.Kvs[0].Lease) != sess.Lease(), nil
}

// session returns the live session the key goes on, granting a lease if the
// last one is gone.
func (r *Registration) session(ctx context.Context) (sess *concurrency.Session, fresh bool, err error) {
	r.mu.Lock()
	sess, gone := r.sess, r.gone
	r.gone = false
	r.mu.Unlock()
	if sess != nil {
		select {
		case <-sess.Done():
		default:
			if !gone {
				return sess, false, nil
			}
		}
		if ctx.Err() == nil { // not the registration's own end
			r.mu.Lock()
			since := r.since
			r.mu.Unlock()
			obs.Lost(r.obs, observe.KindRegistry, r.key, 0, since, errs.SessionExpired, nil)
		}
		if !r.own {
			return nil, false, ErrSessionExpired
		}
		sess.Orphan() // its lease is gone or going: revoking could only wait
		r.mu.Lock()
		now := time.Now()
		r.orphans = slices.DeleteFunc(r.orphans, func(o orphan) bool { return now.Sub(o.at) > r.orphanLife() })
		if !gone { // gone: etcd said the lease does not exist
			r.orphans = append(r.orphans, orphan{sess.Lease(), now})
		}
		r.mu.Unlock()
	}
	// Granting apart from NewSession bounds the grant (by etcd's client's
	// own timeouts and ctx) without bounding the keep-alive, which lives on ctx.
	var resp *clientv3.LeaseGrantResponse
	err = r.bounded(ctx, func(ctx context.Context) (err error) {
		resp, err = r.cli.Grant(ctx, int64(r.ttl))
		return err
	})
	if err != nil {
		return nil, false, err
	}
	sess, err = concurrency.NewSession(r.cli, concurrency.WithLease(resp.ID),
		concurrency.WithTTL(r.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	r.sess = sess
	r.mu.Unlock()
	return sess, true, nil
}

// put stores the instance as it is now on sess's lease, in one Txn, and
// tells the follower not to deliver that write back.
func (r *Registration) put(ctx context.Context, sess *concurrency.Session, f *follow.Follower) error {
	r.mu.Lock()
	val, gen := r.inst.encode(), r.gen
	r.mu.Unlock()
	var resp *clientv3.TxnResponse
	err := r.bounded(ctx, func(ctx context.Context) (err error) {
		resp, err = r.cli.Txn(ctx).Then(clientv3.OpPut(r.key, val, clientv3.WithLease(sess.Lease()))).Commit()
		return err
	})
	if err != nil {
		return err
	}
	f.Reset(resp.Header.Revision)
	r.mu.Lock()
	r.stored = max(r.stored, gen)
	if r.status.Lease != sess.Lease() {
		r.since = time.Now()
	}
	r.status = Status{Registered: true, Lease: sess.Lease()}
	r.broadcast()
	r.mu.Unlock()
	return nil
}

// bounded runs f with a deadline of one TTL, so that a request held by a
// partition is sent again rather than waited for; a request cut short so
// returns [errs.NoAnswer], which is transient. A grant that is applied
// late leaves a lease that nobody keeps alive; a put applied late puts
// the same value on a lease of this registration.
func (r *Registration) bounded(ctx context.Context, f func(context.Context) error) error {
	bctx, cancel := context.WithTimeout(ctx, time.Duration(r.ttl)*time.Second)
	defer cancel()
	err := f(bctx)
	if err != nil && ctx.Err() == nil && bctx.Err() != nil {
		return errs.NoAnswer
	}
	return err
}

// waitCtx returns the context for one wait on the key: it ends with ctx,
// when sess stops being kept alive, or when a change to the instance wakes
// the loop.
func (r *Registration) waitCtx(ctx context.Context, sess *concurrency.Session) (context.Context, func()) {
	wctx, cancel := context.WithCancel(sess.Ctx())
	unhook := context.AfterFunc(ctx, cancel)
	r.mu.Lock()
	r.wake = cancel
	if r.gen > r.stored {
		cancel()
	}
	r.mu.Unlock()
	return wctx, func() {
		unhook()
		cancel()
		r.mu.Lock()
		r.wake = nil
		r.mu.Unlock()
	}
}

// changed reports whether the instance changed since it was last stored.
func (r *Registration) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen > r.stored
}

// fail records err as the loop's last error, and reports whether it ends
// the registration: a closed client, an expired borrowed session, or any
// error before the key was first stored but a transient one.
func (r *Registration) fail(err error) bool {
	r.mu.Lock()
	r.status.Registered, r.status.Err = false, err
	first := r.stored == 0
	r.broadcast()
	r.mu.Unlock()
	switch {
	case errors.Is(err, errs.Closed) || r.cli.Ctx().Err() != nil:
		r.end(ErrClosed)
	case errors.Is(err, ErrSessionExpired):
		r.end(ErrSessionExpired)
	case first && !errs.Transient(err):
		r.end(err)
	default:
		return false
	}
	return true
}

// end records why the registration ended.
func (r *Registration) end(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.status.Registered = false
	r.broadcast()
	r.mu.Unlock()
}

// broadcast wakes whoever waits for stored or err to change. r.mu is held.
func (r *Registration) broadcast() {
	close(r.storedc)
	r.storedc = make(chan struct{})
}

// deleted reports whether evs delete the key.
func deleted(evs []*clientv3.Event) bool {
	for _, ev := range evs {
		if ev.Type == clientv3.EventTypeDelete {
			return true
		}
	}
	return false
}
