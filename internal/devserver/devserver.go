// Package devserver is "lockctl dev": a local single-member etcd for
// trying lockctl out. It lives in its own binary, lockctl-dev, so that
// lockctl itself does not link the etcd server: its package initialisation
// alone would triple the cost of every "lockctl run".
package devserver

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/coordkit/coordkit/etcdtest"
)

// Run parses args (--listen, --data-dir), starts etcd, prints where it
// listens and serves until ctx is done. It returns 2 for bad flags and 1
// when etcd cannot start.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lockctl dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2379", "client address to listen on")
	dir := fs.String("data-dir", "", "data directory (default: a temporary one, removed on exit)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: lockctl dev [--listen ADDR] [--data-dir DIR]

Start a single-member etcd in this process, listening on --listen, with its data in
--data-dir (a temporary directory, removed on exit, unless given). Stop it with Ctrl-C.
It is for trying things out, like 'consul agent -dev': use a real cluster in production.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lockctl dev: unexpected arguments %q\n", fs.Args())
		return 2
	}
	srv, err := etcdtest.Start(ctx, *dir, etcdtest.WithClientAddr(*listen), etcdtest.WithFsync())
	if err != nil {
		fmt.Fprintf(stderr, "lockctl dev: start etcd on %s: %v\n", *listen, err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "etcd ready at %s (data in %s)\nIn another shell: export LOCKCTL_ENDPOINTS=%s\n",
		srv.Endpoints()[0], srv.Member(0).Dir(), srv.Endpoints()[0])
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping etcd")
	return 0
}
