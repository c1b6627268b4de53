package etcdtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
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

// ExampleCluster_AddUser starts an etcd that speaks TLS and has auth on, and
// gives a user the run of one prefix: the set-up a test of prefix-limited
// credentials needs. TLSFiles has the files for --cacert, --cert and --key.
func ExampleCluster_AddUser() {
	ctx := context.Background()
	srv, err := etcdtest.Start(ctx, "", etcdtest.WithTLS(), etcdtest.WithAuth("rootpw"))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.AddUser(ctx, "alice", "alicepw", "jobs/"); err != nil {
		log.Fatal(err)
	}
	tc, err := (&transport.TLSInfo{TrustedCAFile: srv.TLSFiles().CA}).ClientConfig()
	if err != nil {
		log.Fatal(err)
	}
	alice, err := clientv3.New(clientv3.Config{
		Endpoints: srv.Endpoints(), TLS: tc, Username: "alice", Password: "alicepw",
		DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	_, err = alice.Put(ctx, "jobs/nightly", "x")
	fmt.Println("inside jobs/:", err)
	_, err = alice.Put(ctx, "config/db", "x")
	fmt.Println("outside:", errors.Is(err, rpctypes.ErrPermissionDenied))
	// Output:
	// inside jobs/: <nil>
	// outside: true
}
