package mutex_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/mutex"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example takes a lock, uses its fencing token for a guarded write to etcd,
// and releases it. A second session cannot take the lock meanwhile.
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

	m := mutex.New(s, "/example/jobs/nightly")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked, token > 0:", m.Token() > 0)

	// This write commits only while the lock is still ours.
	resp, err := m.Txn(ctx).Then(clientv3.OpPut("/example/jobs/last-run", "now")).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("guarded write committed:", resp.Succeeded)

	other, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	err = mutex.New(other, "/example/jobs/nightly").TryLock(ctx)
	fmt.Println("other session:", errors.Is(err, mutex.ErrLocked))

	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	cli.Delete(ctx, "/example/jobs/last-run")
	// Output:
	// locked, token > 0: true
	// guarded write committed: true
	// other session: true
}

// ExampleMutex_Done stops work when the lock is lost, for whatever reason.
func ExampleMutex_Done() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := concurrency.NewSession(cli)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	m := mutex.New(s, "/example/done")
	if err := m.Lock(context.Background()); err != nil {
		log.Fatal(err)
	}
	work, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-m.Done(): // lock lost: stop the work at once
			stop()
		case <-work.Done():
		}
	}()

	// Somebody deletes the lock's key (an operator, "lockctl release").
	cli.Delete(context.Background(), m.Key())
	<-work.Done()
	fmt.Println("work stopped:", errors.Is(m.Err(), mutex.ErrLost))
	m.Unlock(context.Background())
	// Output:
	// work stopped: true
}
