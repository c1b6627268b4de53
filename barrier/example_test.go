package barrier_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/coordkit/coordkit/barrier"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example holds workers back until a migration is done.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()

	b := barrier.New(cli, "/example/migration")
	if err := b.Hold(ctx); err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := barrier.New(cli, "/example/migration").Wait(ctx); err != nil {
			log.Fatal(err)
		}
		fmt.Println("worker: starting")
	})
	fmt.Println("migrating")
	if err := b.Release(ctx); err != nil {
		log.Fatal(err)
	}
	wg.Wait()
	// Output:
	// migrating
	// worker: starting
}

// ExampleDoubleBarrier runs three participants through one step together:
// none starts before all have arrived, none goes on before all are done.
func ExampleDoubleBarrier() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		entered int
	)
	for range 3 {
		s, err := concurrency.NewSession(cli)
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close() // a participant whose session ends is gone
		d := barrier.NewDouble(s, "/example/step", 3)
		wg.Go(func() {
			if err := d.Enter(ctx); err != nil {
				log.Fatal(err)
			}
			mu.Lock()
			entered++
			mu.Unlock()
			if err := d.Leave(ctx); err != nil {
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
	fmt.Println("entered together:", entered)
	// Output:
	// entered together: 3
}
