package waitq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/lease"
	"github.com/coordkit/coordkit/internal/obs"
	"github.com/coordkit/coordkit/internal/retry"
	"github.com/coordkit/coordkit/internal/session"
	"github.com/coordkit/coordkit/observe"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Prefix returns a primitive's key prefix: name followed by "/", whatever
// name ends with, exactly as etcd's NewMutex, NewElection and the recipes
// make it, so that a name written "jobs/" (as in etcd's examples) means the
// same keys to coordkit, etcd's primitives and etcdctl. It panics on an
// empty name and on "/", which name nothing.
func Prefix(pkg, name string) string {
	switch name {
	case "":
		panic(pkg + ": empty name")
	case "/":
		panic(pkg + ": name \"/\" names nothing: give a name such as jobs/nightly")
	}
	return name + "/"
}

// Key returns a waiter key under prefix for session s: the lease id in hex,
// as etcd's concurrency.Mutex and etcdctl use, so their tools see our
// waiters, then a random suffix, so that two handles on one session are two
// distinct places in line.
func Key(prefix string, s *concurrency.Session) string {
	return fmt.Sprintf("%s%x_%08x", prefix, int64(s.Lease()), rand.Uint32())
}

// Waiter is one place in a revision-ordered line. It is not safe for
// concurrent use; primitives serialise access to it.
type Waiter struct {
	session *concurrency.Session
	prefix  string
	key     string
	rev     int64          // the key's create revision once joined, 0 before
	tracker *lease.Tracker // follows the session's lease

	pace *retry.Pacer // spaces out re-checks after a broken watch; made at the first pause

	// abandoned is set when a request that writes key may still reach
	// etcd late: the unguarded delete of [Waiter.Abandon], or a Join whose
	// outcome was unknown and was tried again. The handle must take a new
	// key ([Waiter.NextKey]) before it joins again; the janitor watches
	// this one for [AbandonLinger] once it is deleted.
	abandoned bool

	// unguarded makes Release a plain Delete (see [Unguarded]).
	unguarded bool

	// tail makes the waiter join through its line's tail ([Tail]); tailed
	// records that a slot of the tail may name its key, so that deleting
	// the key must delete that slot too.
	tail, tailed bool
	// next is the key to join with next time, decided by the last Acquire.
	next string

	// obs receives the waiter's events (see [Observed]); nil for none.
	// kind and name label them; since is when the hold was taken, set
	// only when observed.
	obs        *observe.Observer
	kind, name string
	since      time.Time
}

// Option changes how a [Waiter] acquires and releases.
type Option interface{ apply(*Waiter) }

type optionFunc func(*Waiter)

func (f optionFunc) apply(w *Waiter) { f(w) }

// Unguarded makes [Waiter.Release] a plain Delete instead of a Txn guarded
// by the create revision, which costs as much as a bare delete. It is safe
// only for a primitive that takes a new key after any failed release
// ([Handle.KeyRetired]): then a late delete of this key can never hit a
// newer hold.
func Unguarded() Option { return optionFunc(func(w *Waiter) { w.unguarded = true }) }

// New returns a waiter for key under prefix, judged by the session's lease
// tracker (started on the session's first use).
func New(s *concurrency.Session, prefix, key string, opts ...Option) *Waiter {
	w := &Waiter{session: s, prefix: prefix, key: key, next: key, tracker: session.Of(s).Tracker()}
	for _, o := range opts {
		o.apply(w)
	}
	return w
}

// Observe makes the waiter report its acquisitions, releases, losses,
// retries and broken watches to o (through package obs), labelled with
// kind (one of observe's Kind constants) and name (the primitive's
// prefix). A nil o observes nothing. It is a method rather than an
// [Option] so that an unobserved acquisition allocates nothing for it.
func (w *Waiter) Observe(o *observe.Observer, kind, name string) {
	w.obs, w.kind, w.name = o, kind, name
}

// Key returns the waiter's key.
func (w *Waiter) Key() string { return w.key }

// Rev returns the key's create revision once joined (its place in line and
// fencing token), 0 before.
func (w *Waiter) Rev() int64 { return w.rev }

// Tracker returns the tracker that follows the session's lease.
func (w *Waiter) Tracker() *lease.Tracker { return w.tracker }

// Claimed records a key that the caller wrote by other means than
// [Waiter.Acquire] (a queue's claim marker), with its create revision, so
// that the waiter can hold and release it.
func (w *Waiter) Claimed(key string, rev int64) {
	w.key, w.rev, w.next = key, rev, key
	if obs.On(w.obs) {
		w.since = time.Now()
	}
}

// AwaitLease waits until the lease tracker has confirmed the lease once. A
// hold must not be reported as taken before: until then a client cut off
// from etcd could not tell that it had lost it. Only a session's first hold
// waits here, for one round trip that overlapped its Join.
func (w *Waiter) AwaitLease(ctx context.Context) error {
	select {
	case <-w.tracker.Ready():
		return nil
	case <-w.tracker.Lost():
		return w.tracker.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Waiter) client() *clientv3.Client { return w.session.Client() }

// IsOwner is the comparison that holds while the waiter's key exists with
// the create revision it joined with.
func (w *Waiter) IsOwner() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(w.key), "=", w.rev)
}

// Bind returns ctx, also cancelled when the lease is lost.
func (w *Waiter) Bind(ctx context.Context) (context.Context, context.CancelFunc) {
	return w.tracker.Bind(ctx)
}

// Err translates an error from a call made with a bound context: if the
// lease was lost, that is the cause; an unknown lease is an expired session.
func (w *Waiter) Err(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if lerr := w.tracker.Err(); lerr != nil {
		return lerr
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return errs.SessionExpired
	}
	if cause := context.Cause(ctx); cause != nil && errors.Is(err, ctx.Err()) {
		if errors.Is(cause, errs.SessionExpired) || errors.Is(cause, errs.Lost) {
			return cause
		}
	}
	return err
}

// Join writes the waiter's key with value on the session's lease unless it
// exists, and runs reads in the same Txn after the write. It records the
// key's create revision ([Waiter.Rev]) and reports whether the key was
// created now (fresh) or existed already, in which case the reads were not
// run and resp holds only the key's Get.
func (w *Waiter) Join(ctx context.Context, value string, reads ...clientv3.Op) (resp *clientv3.TxnResponse, fresh bool, err error) {
	forget(w.session, w.key)
	put := clientv3.OpPut(w.key, value, clientv3.WithLease(w.session.Lease()))
	then := append([]clientv3.Op{put}, reads...)
	resp, err = w.client().Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(w.key), "=", 0)).
		Then(then...).
		Else(clientv3.OpGet(w.key)).
		Commit()
	if err != nil {
		return nil, false, err
	}
	if resp.Succeeded {
		w.rev = resp.Header.Revision
		return resp, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, false, errors.New("waitq: key vanished between compare and get")
	}
	w.rev = kvs[0].CreateRevision
	return resp, false, nil
}

// JoinFresh is [Waiter.Join] for a waiter that must not reuse a key left
// over from an earlier hold (one whose release could not reach etcd, or
// that the session's janitor has not deleted yet): if the key exists, it
// deletes that incarnation and joins again, once. fresh is false if the key
// was there again, which only a concurrent Join of the same key can cause.
func (w *Waiter) JoinFresh(ctx context.Context, value string, reads ...clientv3.Op) (resp *clientv3.TxnResponse, fresh bool, err error) {
	resp, fresh, err = w.Join(ctx, value, reads...)
	if err != nil || fresh {
		return resp, fresh, err
	}
	// This delete is a step of the caller's acquisition, so the caller's
	// ctx bounds it. Bounding it by CleanupTimeout, as Leave would, ends it
	// with a DeadlineExceeded that the caller takes for its own deadline.
	if _, err = w.client().Txn(ctx).If(w.IsOwner()).Then(append([]clientv3.Op{clientv3.OpDelete(w.key)}, w.untailOps()...)...).Commit(); err != nil {
		return nil, false, err
	}
	return w.Join(ctx, value, reads...)
}

// NextKey returns the key that the handle which made w should join with
// next time, as the last [Waiter.Acquire] decided: w's own, unless the
// acquisition failed (its key may be left to the session's janitor, and
// joining it again would take it back while it still stands in line, for
// as long as that Join waits on a slow member) or a write of it may still
// reach etcd late. Then it is a new key with the same prefix. Keys are
// random: a new one costs nothing.
func (w *Waiter) NextKey() string { return w.next }

// decideNext records the key to join with next time after an acquisition
// that ended with err.
func (w *Waiter) decideNext(err error) {
	w.next = w.key
	if err != nil || w.abandoned {
		w.next = Key(w.key[:strings.LastIndexByte(w.key, '/')+1], w.session)
	}
}

// Check runs ops only if the waiter's key still exists with its create
// revision. If it does not, it returns [errs.SessionExpired] when the lease
// is gone (one probe tells) and [errs.Lost] when someone deleted the key.
func (w *Waiter) Check(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	resp, err := w.client().Txn(ctx).If(w.IsOwner()).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, w.ownKeyGone(ctx)
	}
	return resp, nil
}

// CheckSince is [Waiter.Check] for one Get of key with opts, whose answer
// need only reflect the store at revision minRev or later, not at the
// moment of the call. It first asks the member it reaches for a
// serializable answer, which skips the linearizable read's round of
// consensus (on a cluster, a heartbeat to a quorum), so a waiter learns one
// step sooner that its turn came. It falls back to a linearizable Check
// when that member has not applied minRev yet or does not show the
// waiter's key (it may lag behind the Join): a stale member must never make
// a waiter think its key is gone, nor hide a change the caller knows of.
//
// Callers rely on the line only ever shrinking ahead of a waiter (no key
// can be created with a smaller create revision than one that exists), so
// "nobody ahead" at any revision after the waiter's Join stays true.
func (w *Waiter) CheckSince(ctx context.Context, minRev int64, key string, opts ...clientv3.OpOption) (*clientv3.TxnResponse, error) {
	ser := append(slices.Clip(opts), clientv3.WithSerializable())
	// With no Else branch and only serializable reads, etcd serves the Txn
	// from the member's own state.
	resp, err := w.client().Txn(ctx).If(w.IsOwner()).Then(clientv3.OpGet(key, ser...)).Commit()
	if err == nil && resp.Succeeded && resp.Header.Revision >= minRev {
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return w.Check(ctx, clientv3.OpGet(key, opts...))
}

// FirstAttemptTimeout bounds the first attempt of each request that an
// acquisition makes ([Waiter.Retrying]); each further attempt of the same
// request gets twice as long, up to MaxAttemptTimeout (8 times as long). A request caught by
// a member that cannot answer (a paused leader, whose requests etcd fails
// only after its 7 s request timeout; a member behind a connection that
// stays open but carries nothing) is then sent again, and the client's
// round robin sends it through another member, long before the caller's
// context ends, while a cluster that is only slow still gets to answer.
const (
	FirstAttemptTimeout = 2 * time.Second
	MaxAttemptTimeout   = FirstAttemptTimeout << maxDoublings
	maxDoublings        = 3
)

// ErrNoAnswer is the error of an attempt that had no answer within its
// bound. It is [Transient]: the attempt may still take effect.
var ErrNoAnswer = errs.NoAnswer

// Retrying runs f, one request of an acquisition, until it succeeds, fails
// for good, or ctx ends or the lease is lost: each attempt is bounded (see
// [FirstAttemptTimeout]), and a transient failure is tried again after a
// pause ([Waiter.again]). retry, if not nil, is called before each further
// attempt (a Join marks the waiter abandoned there: the failed attempt
// may land late).
func (w *Waiter) Retrying(ctx context.Context, retry func(), f func(context.Context) error) error {
	for n := 0; ; n++ {
		d := FirstAttemptTimeout << min(n, maxDoublings)
		actx, cancel := context.WithTimeout(ctx, d)
		deadline, _ := actx.Deadline()
		err := f(actx)
		// The deadline may have passed before actx's timer fires (late
		// under load): the bound is ours either way.
		if err != nil && ctx.Err() == nil && (actx.Err() != nil || !time.Now().Before(deadline)) {
			err = fmt.Errorf("%w within %v", ErrNoAnswer, d)
		}
		cancel()
		failed := err
		if !w.again(ctx, &err) {
			return err
		}
		obs.Retried(w.obs, w.kind, w.name, n+1, failed)
		if retry != nil {
			retry()
		}
	}
}

// again reports whether an acquisition should try a step again after *err:
// etcd was between leaders, out of quorum or out of reach ([Transient]). It
// first pauses (backing off); if ctx ends or the lease is lost meanwhile,
// it sets *err to why and reports false. The lease bounds the retries:
// once it cannot be confirmed, the tracker gives up and so does the caller.
func (w *Waiter) again(ctx context.Context, err *error) bool {
	if !Transient(*err) {
		return false
	}
	if perr := w.pause(ctx); perr != nil {
		*err = perr
		return false
	}
	return true
}

// Transient is [errs.Transient], the one classification of etcd's errors
// that every retry loop shares.
func Transient(err error) bool { return errs.Transient(err) }
