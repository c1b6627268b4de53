package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

func newDevCmd() *cobra.Command {
	var listen, dataDir string
	cmd := &cobra.Command{
		Use:   "dev [--listen ADDR] [--data-dir DIR]",
		Short: "Run a local single-member etcd for trying lockctl out",
		Long: `Start a single-member etcd listening on --listen (default 127.0.0.1:2379), with its data
in --data-dir (a temporary directory, removed on exit, unless given). Stop it with Ctrl-C.
It is for trying things out, like 'consul agent -dev': use a real cluster in production.
It prints the address it listens on when ready: with port 0, the port the kernel chose.

The server is the separate program lockctl-dev, found next to lockctl or on PATH, so that
lockctl itself stays small and starts fast. Install it with
  go install github.com/coordkit/coordkit/cmd/lockctl-dev@latest

Exit codes: 0 after Ctrl-C or TERM; 64 for a usage error; 69 when etcd cannot start
(the address is in use, the data directory is unusable, lockctl-dev is not installed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findDev()
			if err != nil {
				return withCode(ExitUnavailable, errors.New("dev needs the lockctl-dev program, found neither next to lockctl nor on PATH: go install github.com/coordkit/coordkit/cmd/lockctl-dev@latest"))
			}
			argv := []string{path, "--listen", listen}
			if dataDir != "" {
				argv = append(argv, "--data-dir", dataDir)
			}
			// Replace this process, so that Ctrl-C and TERM reach etcd directly.
			return withCode(ExitInternal, syscall.Exec(path, argv, os.Environ()))
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:2379", "client address to listen on (port 0: one the kernel picks)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (default: a temporary one, removed on exit)")
	return cmd
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

// versionString is what "lockctl version" and "lockctl --version" show
// after "lockctl ".
func versionString() string {
	if bi, ok := debug.ReadBuildInfo(); ok && version == "" {
		return fmt.Sprintf("%s (%s)", bi.Main.Version, bi.GoVersion)
	}
	return version
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print lockctl's version (also: lockctl --version)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "lockctl %s\n", versionString())
		},
	}
}
