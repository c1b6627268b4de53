package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/coordkit/coordkit/console"
	"github.com/coordkit/coordkit/etcdclient"
	"github.com/spf13/cobra"
)

// consoleShutdown bounds how long the console waits for requests in
// flight when it is stopped.
const consoleShutdown = 5 * time.Second

func newConsoleCmd(cfg *config) *cobra.Command {
	var listen string
	var prefixes []string
	var write bool
	var hosts []string
	cmd := &cobra.Command{
		Use:   "console [--listen ADDR] [--prefix P]... [--allow-host H]... [--allow-write]",
		Short: "Serve a web console of the holds, elections, services and configs in etcd",
		Long: `Serve a web page on --listen (default 127.0.0.1:8080, loopback only) that shows,
under each --prefix (default: the whole key space), who holds and who waits for each
lock, semaphore and rwlock, who leads each election, the instances of each registered
service, and each configuration's versions with diffs. It updates live from etcd
watches. It prints the address it serves on when ready; stop it with Ctrl-C.

It reads with lockctl's client settings, so etcd's RBAC decides what it may see: a
user limited to some prefixes names them with --prefix, and a refused prefix shows
as refused on the page.

It is read-only unless --allow-write: then it can break a stuck hold (by the rules of
lockctl release), roll a configuration back and publish one, each after a
confirmation. Anyone who can reach the address can do so with lockctl's etcd user:
keep it on loopback, or behind a proxy that authenticates.

It answers only to loopback names (localhost, 127.0.0.1, [::1]), the address it
listens on and each --allow-host (a name, any port, or name:port), so that a web
page whose domain is rebound to the console's address cannot read it: give the
name a reverse proxy passes on, or the machine's name with a non-loopback --listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cli, err := cfg.newClient(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			var opts []console.Option
			for _, p := range prefixes {
				opts = append(opts, console.WithPrefix(cfg.namespace+p))
			}
			if len(prefixes) == 0 {
				opts = append(opts, console.WithPrefix(cfg.namespace))
			}
			probe := cfg.namespace
			if len(prefixes) > 0 {
				probe += prefixes[0]
			}
			if probe == "" {
				probe = "\x00"
			}
			// A refused prefix is the page's to show; an etcd that does
			// not answer is an error now.
			if err := cfg.Check(ctx, cli, probe); err != nil && !errors.Is(err, etcdclient.ErrPermission) {
				if ctx.Err() != nil {
					return interrupted()
				}
				return unavailable(cfg.Endpoints, err)
			}
			if write {
				opts = append(opts, console.WithWrite())
			}
			opts = append(opts, console.WithAllowedHosts(append([]string{listen}, hosts...)...))
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return withCode(ExitUnavailable, fmt.Errorf("console: %w", err))
			}
			mode := "read-only"
			if write {
				mode = "actions allowed"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "console on http://%s (%s)\n", l.Addr(), mode)
			if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
				fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: the console listens on %s, beyond loopback: anyone who reaches it reads etcd as this user\n", l.Addr())
			}
			// Open pages' event streams end with ctx, so Shutdown is not
			// held up by them.
			srv := &http.Server{Handler: console.Handler(cli, opts...), BaseContext: func(net.Listener) context.Context { return ctx },
				ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(l) }()
			select {
			case err := <-served:
				return withCode(ExitUnavailable, fmt.Errorf("console: %w", err))
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consoleShutdown)
			defer cancel()
			err = srv.Shutdown(sctx)
			<-served
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	cmd.Flags().StringArrayVar(&prefixes, "prefix", nil, "key prefix to show, under --namespace (repeatable; default: the whole key space)")
	cmd.Flags().StringArrayVar(&hosts, "allow-host", nil, "a host name (any port) or host:port the console also answers to, e.g. a reverse proxy's (repeatable)")
	cmd.Flags().BoolVar(&write, "allow-write", false, "allow breaking holds, rollback and publish (each confirmed on the page)")
	return cmd
}
