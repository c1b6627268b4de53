package main

import (
	"fmt"
	"runtime/debug"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/spf13/cobra"
)

func newDevCmd() *cobra.Command {
	var listen, dir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local single-member etcd for trying lockctl out",
		Long: `Start a single-member etcd in this process, listening on --listen, with its data in
--data-dir (a temporary directory, removed on exit, unless given). Stop it with Ctrl-C.
It is for trying things out, like 'consul agent -dev': use a real cluster in production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := etcdtest.Start(cmd.Context(), dir, etcdtest.WithClientAddr(listen), etcdtest.WithFsync())
			if err != nil {
				return withCode(ExitUnavailable, fmt.Errorf("start etcd on %s: %w", listen, err))
			}
			defer srv.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "etcd ready at %s (data in %s)\nIn another shell: export LOCKCTL_ENDPOINTS=%s\n",
				srv.Endpoints()[0], srv.Member(0).Dir(), srv.Endpoints()[0])
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping etcd")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2379", "client address to listen on")
	cmd.Flags().StringVar(&dir, "data-dir", "", "data directory (default: a temporary one, removed on exit)")
	return cmd
}

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is shown.
var version = ""

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lockctl's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
				v = bi.Main.Version
				fmt.Fprintf(cmd.OutOrStdout(), "lockctl %s (%s)\n", v, bi.GoVersion)
				return
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lockctl %s\n", v)
		},
	}
}
