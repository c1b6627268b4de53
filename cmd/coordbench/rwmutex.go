package main

import (
	"context"
	"fmt"

	"github.com/coordkit/coordkit/rwmutex"
	"go.etcd.io/etcd/client/v3/concurrency"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
)

// rwmutexWorkloads compare coordkit's RWMutex with etcd's recipe RWMutex on
// a read-heavy mix (8 readers, 1 writer) and a write-heavy one (2 readers,
// 6 writers), each worker always taking the same mode.
func rwmutexWorkloads() []workload {
	var ws []workload
	for _, mix := range []struct{ readers, writers int }{{8, 1}, {2, 6}} {
		n := mix.readers + mix.writers
		isWriter := func(i int) bool { return i >= mix.readers }
		ws = append(ws, workload{
			name: fmt.Sprintf("rwmutex/R%dW%d", mix.readers, mix.writers), unit: "locks",
			ours: contend(n, func(s *concurrency.Session, name string, i int) holder {
				m := rwmutex.New(s, name)
				if isWriter(i) {
					return holder{acquire: m.Lock, release: m.Unlock, write: true}
				}
				return holder{acquire: m.RLock, release: m.RUnlock}
			}),
			theirs: contend(n, func(s *concurrency.Session, name string, i int) holder {
				// The recipe takes no contexts.
				m := recipe.NewRWMutex(s, name)
				if isWriter(i) {
					return holder{acquire: noCtx(m.Lock), release: noCtx(m.Unlock), write: true}
				}
				return holder{acquire: noCtx(m.RLock), release: noCtx(m.RUnlock)}
			}),
			vs: "etcd recipe RWMutex",
		})
	}
	return ws
}

func noCtx(f func() error) func(context.Context) error {
	return func(context.Context) error { return f() }
}
