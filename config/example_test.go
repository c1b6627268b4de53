package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/config"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Example publishes a service's limits, watches them as a typed value, and
// shows that a value the validator refuses is never written.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	name := "/example/prod/payments/limits"
	defer cli.Delete(ctx, name+"/", clientv3.WithPrefix())

	type Limits struct {
		MaxConns int `json:"max_conns"`
	}
	decode := func(b []byte) (l Limits, err error) {
		if err = json.Unmarshal(b, &l); err == nil && l.MaxConns <= 0 {
			err = errors.New("max_conns must be positive")
		}
		return l, err
	}
	validate := func(b []byte) error { _, err := decode(b); return err }

	if _, err := config.Publish(ctx, cli, name, []byte(`{"max_conns":10}`), config.WithValidator(validate)); err != nil {
		log.Fatal(err)
	}
	w, err := config.Watch(ctx, cli, name, decode)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	fmt.Println("version", w.Version(), "max_conns", w.Load().MaxConns)

	_, err = config.Publish(ctx, cli, name, []byte(`{"max_conns":0}`), config.WithValidator(validate))
	fmt.Println("refused:", errors.Is(err, config.ErrInvalid))

	v, err := config.Publish(ctx, cli, name, []byte(`{"max_conns":20}`), config.WithValidator(validate))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.WaitFor(ctx, v); err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", w.Version(), "max_conns", w.Load().MaxConns)
	// Output:
	// version 1 max_conns 10
	// refused: true
	// version 2 max_conns 20
}

// ExampleRollback restores an earlier version as a new one, and shows what
// changed with Diff.
func ExampleRollback() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	name := "/example/prod/gateway"
	defer cli.Delete(ctx, name+"/", clientv3.WithPrefix())

	for _, data := range []string{"timeout=1s\nretries=3\n", "timeout=5s\nretries=3\n"} {
		if _, err := config.Publish(ctx, cli, name, []byte(data), config.WithAuthor("ops")); err != nil {
			log.Fatal(err)
		}
	}
	v, err := config.Rollback(ctx, cli, name, 1, config.WithAuthor("ops"))
	if err != nil {
		log.Fatal(err)
	}
	h, err := config.History(ctx, cli, name, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new version", v, "-", h[0].Comment)
	fmt.Print(config.Diff(h[1], h[0]))
	// Output:
	// new version 3 - rollback to version 1
	// --- /example/prod/gateway version 2
	// +++ /example/prod/gateway version 3
	// -timeout=5s
	// +timeout=1s
	//  retries=3
}
