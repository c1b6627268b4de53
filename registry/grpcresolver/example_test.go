package grpcresolver_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/coordkit/coordkit/registry"
	"github.com/coordkit/coordkit/registry/grpcresolver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A gRPC server registers itself; a client dials the service by name and
// balances over its instances with round_robin.
func Example() {
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoint()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	// The server: grpc-go's health service, registered under its address.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	defer s.Stop()
	r, err := registry.Register(ctx, cli, registry.Instance{Service: "/example/grpc", ID: "one", Addr: lis.Addr().String()})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Deregister(ctx)

	// The client.
	cc, err := grpc.NewClient(grpcresolver.Target("/example/grpc"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(grpcresolver.New(cli)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	// Output:
	// SERVING
}
