package registry_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// An instance registers itself; a client watches the service and reads
// the instances it can call.
func Example() {
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoint()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	r, err := registry.Register(ctx, cli, registry.Instance{
		Service:  "/example/hello",
		Addr:     "10.0.0.7:8080",
		Metadata: map[string]string{"zone": "a"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Deregister(ctx)

	v := registry.Watch(cli, "/example/hello")
	defer v.Close()
	<-v.Ready()
	for _, in := range v.Snapshot().Instances {
		fmt.Println(in.ID, in.Addr, in.Metadata["zone"], in.State)
	}
	// Output:
	// 10.0.0.7:8080 10.0.0.7:8080 a serving
}
