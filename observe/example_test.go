package observe_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/observe"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Example hooks into a mutex's acquisitions and releases. Set only the
// hooks you need; observe.Slog logs every event, and package promobs
// keeps Prometheus metrics.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	o := &observe.Observer{
		Acquired: func(e observe.Acquire) { fmt.Println("acquire", e.Kind, e.Name, e.Result) },
		Released: func(e observe.Release) { fmt.Println("release", e.Kind, e.Name) },
	}
	m := mutex.New(s, "/example/observe/nightly", mutex.WithObserver(o))
	ctx := context.Background()
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// acquire mutex /example/observe/nightly/ acquired
	// release mutex /example/observe/nightly/
}
