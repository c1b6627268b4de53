// Package devserver is "lockctl dev": a local single-member etcd for
// trying lockctl out. It lives in its own binary, lockctl-dev, so that
// lockctl itself does not link the etcd server: its package initialisation
// alone would triple the cost of every "lockctl run".
package devserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/coordkit/coordkit/etcdtest"
)

// Exit codes of Run, the same as lockctl's for the same cases.
const (
	// ExitUsage: bad flags or arguments.
	ExitUsage = 64
	// ExitCannotStart: etcd could not start (the address is in use, the
	// data directory is unusable): etcd is unavailable, as lockctl's 69.
	ExitCannotStart = 69
)

// Run parses args (--listen, --data-dir), starts etcd, prints where it
// listens (the port the kernel chose, for a port 0) and serves until ctx
// is done. It returns 0 after ctx is done (or for --help), [ExitUsage] for
// bad flags and [ExitCannotStart] when etcd cannot start.
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
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lockctl dev: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	srv, err := etcdtest.Start(ctx, *dir, etcdtest.WithClientAddr(*listen), etcdtest.WithFsync())
	if err != nil {
		fmt.Fprintf(stderr, "lockctl dev: cannot start etcd on %s: %v\n", *listen, err)
		return ExitCannotStart
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "etcd ready at %s (data in %s)\nIn another shell: export LOCKCTL_ENDPOINTS=%s\n",
		srv.Endpoints()[0], srv.Member(0).Dir(), srv.Endpoints()[0])
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping etcd")
	return 0
}
