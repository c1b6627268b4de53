package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/semaphore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example lets at most three encoders run at once across processes; a big
// job takes two permits. Participants that disagree on the limit get an
// error instead of being admitted.
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
	defer s.Close() // gives back every permit held through the session

	big := semaphore.New(s, "/example/encoders", 3)
	if err := big.Acquire(ctx, 2); err != nil {
		log.Fatal(err)
	}
	fmt.Println("big job holds 2 of", big.Limit())

	small := semaphore.New(s, "/example/encoders", 3)
	err = small.TryAcquire(ctx, 2)
	fmt.Println("2 more:", errors.Is(err, semaphore.ErrNoPermits))
	if err := small.TryAcquire(ctx, 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("1 more: granted")

	err = semaphore.New(s, "/example/encoders", 5).Acquire(ctx, 1)
	fmt.Println("limit 5:", errors.Is(err, semaphore.ErrLimitMismatch))

	if err := small.Release(ctx); err != nil {
		log.Fatal(err)
	}
	if err := big.Release(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// big job holds 2 of 3
	// 2 more: true
	// 1 more: granted
	// limit 5: true
}

// ExampleSemaphore_Done stops work when the permits are lost, for whatever
// reason.
func ExampleSemaphore_Done() {
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

	sem := semaphore.New(s, "/example/done", 2)
	if err := sem.Acquire(context.Background(), 1); err != nil {
		log.Fatal(err)
	}
	work, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-sem.Done(): // permits lost: stop the work at once
			stop()
		case <-work.Done():
		}
	}()

	// Somebody deletes the grant's key (an operator, "lockctl release").
	cli.Delete(context.Background(), sem.Key())
	<-work.Done()
	fmt.Println("work stopped:", errors.Is(sem.Err(), semaphore.ErrLost))
	sem.Release(context.Background())
	// Output:
	// work stopped: true
}
