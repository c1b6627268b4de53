package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func newDevCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev [--listen ADDR] [--data-dir DIR]",
		Short: "Run a local single-member etcd for trying lockctl out",
		Long: `Start a single-member etcd listening on --listen (default 127.0.0.1:2379), with its data
in --data-dir (a temporary directory, removed on exit, unless given). Stop it with Ctrl-C.
It is for trying things out, like 'consul agent -dev': use a real cluster in production.

The server is the separate program lockctl-dev, found next to lockctl or on PATH, so that
lockctl itself stays small and starts fast. Install it with
  go install github.com/coordkit/coordkit/cmd/lockctl-dev@latest`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" {
					return cmd.Help()
				}
			}
			path, err := findDev()
			if err != nil {
				return usagef("lockctl dev needs the lockctl-dev program, found neither next to lockctl nor on PATH: go install github.com/coordkit/coordkit/cmd/lockctl-dev@latest")
			}
			// Replace this process, so that Ctrl-C and TERM reach etcd directly.
			return withCode(ExitInternal, syscall.Exec(path, append([]string{path}, args...), os.Environ()))
		},
	}
}

func findDev() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "lockctl-dev")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath("lockctl-dev")
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
