package console_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/coordkit/coordkit/console"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Mount the console under /console/ of a program's own server, read-only,
// showing the holds and configurations under two prefixes. The server
// cancels its requests' contexts on shutdown, so that open event streams
// end and Shutdown returns.
func ExampleHandler() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", console.Handler(cli,
		console.WithPrefix("jobs/"), console.WithPrefix("prod/"))))
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux, BaseContext: func(net.Listener) context.Context { return ctx }}
	log.Fatal(srv.ListenAndServe())
}
