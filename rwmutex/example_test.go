package rwmutex_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/rwmutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example has two readers share a configuration lock while a writer waits,
// then the writer update the configuration with a guarded write.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()

	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // releases every lock held through the session

	// One handle per concurrent holder; they may share a session.
	r1 := rwmutex.New(s, "/example/config")
	r2 := rwmutex.New(s, "/example/config")
	w := rwmutex.New(s, "/example/config")

	if err := r1.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := r2.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("two readers hold")
	err = w.TryLock(ctx)
	fmt.Println("writer must wait:", errors.Is(err, rwmutex.ErrLocked))

	r1.RUnlock(ctx)
	r2.RUnlock(ctx)
	if err := w.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	// This write commits only while the write lock is still ours.
	resp, err := w.Txn(ctx).Then(clientv3.OpPut("/example/config-data", "v2")).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("guarded write committed:", resp.Succeeded)
	if err := w.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	cli.Delete(ctx, "/example/config-data")
	// Output:
	// two readers hold
	// writer must wait: true
	// guarded write committed: true
}
