package etcdtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/coordkit/coordkit/etcdtest"
)

// Example starts a throwaway etcd outside of a test, as the examples and
// "lockctl dev" do; in a test, etcdtest.NewServer(t) does the same and
// stops it at cleanup.
func Example() {
	ctx := context.Background()
	srv, err := etcdtest.Start(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cli := srv.Client()
	if _, err := cli.Put(ctx, "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	resp, err := cli.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, from %d member(s)\n", resp.Kvs[0].Value, srv.Size())
	// Output: hello, from 1 member(s)
}
