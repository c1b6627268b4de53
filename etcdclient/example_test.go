package etcdclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
)

// Example builds a client of a TLS etcd as a program would from its
// environment (here set by hand), checks it with a first request on the
// program's own prefix, and shows what a client that trusts the wrong CA
// gets instead of a timeout.
func Example() {
	ctx := context.Background()
	srv, err := etcdtest.Start(ctx, "", etcdtest.WithTLS())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	os.Setenv("MYAPP_ENDPOINTS", srv.Endpoints()[0])
	os.Setenv("MYAPP_CACERT", srv.TLSFiles().CA)
	defer os.Unsetenv("MYAPP_ENDPOINTS")
	defer os.Unsetenv("MYAPP_CACERT")

	cfg := etcdclient.Default()
	if err := cfg.LoadEnv("MYAPP", "ETCDCTL"); err != nil {
		log.Fatal(err)
	}
	cli, err := cfg.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	fmt.Println("right CA:", cfg.Check(ctx, cli, "myapp/"))

	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	other, err := etcdtest.NewTLSFiles(dir)
	if err != nil {
		log.Fatal(err)
	}
	cfg.CACert = other.CA
	wrong, err := cfg.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer wrong.Close()
	err = cfg.Check(ctx, wrong, "myapp/")
	fmt.Println("wrong CA:", errors.Is(err, etcdclient.ErrTLS))
	// Output:
	// right CA: <nil>
	// wrong CA: true
}
