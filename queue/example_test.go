package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/queue"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example enqueues jobs with priorities and a delay, and takes them in
// order: by priority, then first in, first out.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	defer cli.Delete(context.Background(), "/example/jobs/", clientv3.WithPrefix())
	ctx := context.Background()

	q := queue.New(cli, "/example/jobs")
	for _, job := range []string{"resize a.png", "resize b.png"} {
		if err := q.Enqueue(ctx, []byte(job)); err != nil {
			log.Fatal(err)
		}
	}
	if err := q.Enqueue(ctx, []byte("page the operator"), queue.WithPriority(-10)); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		it, err := q.Dequeue(ctx) // blocks while the queue is empty
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(it.Value))
	}
	_, err = q.TryDequeue(ctx)
	fmt.Println("empty:", errors.Is(err, queue.ErrEmpty))
	// Output:
	// page the operator
	// resize a.png
	// resize b.png
	// empty: true
}

// ExampleQueue_Claim processes items reliably: an item is removed only once
// its consumer acknowledges it, and returns to the queue if the consumer
// gives it back or dies.
func ExampleQueue_Claim() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	defer cli.Delete(context.Background(), "/example/work/", clientv3.WithPrefix())
	ctx := context.Background()

	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // every item still claimed through s becomes visible again

	q := queue.New(cli, "/example/work", queue.WithSession(s))
	if err := q.Enqueue(ctx, []byte("invoice 42")); err != nil {
		log.Fatal(err)
	}

	c, err := q.Claim(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("working on", string(c.Item().Value))
	// Something went wrong: give it back for another try.
	if err := c.Nack(ctx); err != nil {
		log.Fatal(err)
	}

	c, err = q.Claim(ctx)
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-c.Done():
		// The claim was lost (lease expired, cut off from etcd): stop, the
		// item will be handed to someone else.
		log.Fatal(c.Err())
	default:
	}
	fmt.Println("working on", string(c.Item().Value), "again")
	if err := c.Ack(ctx); err != nil {
		log.Fatal(err)
	}
	n, err := q.Len(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("left:", n)
	// Output:
	// working on invoice 42
	// working on invoice 42 again
	// left: 0
}
