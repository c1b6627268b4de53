package testutil

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Acquirer is the least a shared test drives: Acquire takes the primitive
// (Lock, Campaign, Acquire, Enter, a dequeue) and blocks until it has it or
// ctx ends; Release gives it back.
type Acquirer interface {
	Acquire(ctx context.Context) error
	Release(ctx context.Context) error
}

// Hold is an [Acquirer] whose hold can be watched and fenced: a mutex,
// either mode of an rwmutex, a semaphore's permits, a leadership. The
// methods other than Acquire and Release are the primitive's own. The
// adapters are in package internal/testutil/holds; the loss tests here and
// the chaos scenarios use this one shape.
type Hold interface {
	Acquirer
	Done() <-chan struct{}
	Context(parent context.Context) context.Context
	Err() error
	Key() string
	Token() int64
	Txn(ctx context.Context, cmps ...clientv3.Cmp) clientv3.Txn
}

// NewHold makes a [Hold] on name through session s.
type NewHold func(s *concurrency.Session, name string) Hold

// Steps adapts two functions to an [Acquirer], for a primitive with no hold
// to watch (a barrier, a queue, an stm transaction).
func Steps(acquire, release func(ctx context.Context) error) Acquirer {
	return steps{acquire, release}
}

type steps struct{ acquire, release func(context.Context) error }

func (s steps) Acquire(ctx context.Context) error { return s.acquire(ctx) }
func (s steps) Release(ctx context.Context) error { return s.release(ctx) }
