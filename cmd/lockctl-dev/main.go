// Lockctl-dev runs a local single-member etcd for trying lockctl out. It is
// what "lockctl dev" runs; install both with
//
//	go install github.com/coordkit/coordkit/cmd/lockctl github.com/coordkit/coordkit/cmd/lockctl-dev
//
// Usage:
//
//	lockctl-dev [--listen ADDR] [--data-dir DIR]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coordkit/coordkit/internal/devserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := devserver.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
