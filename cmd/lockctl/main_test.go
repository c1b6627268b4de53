package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/coordkit/coordkit/etcdtest"
	"github.com/coordkit/coordkit/internal/devserver"
	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"
)

// TestMain makes the test binary double as the lockctl command for the
// scripts, and checks for leaked goroutines after the tests.
func TestMain(m *testing.M) {
	testscript.Main(leakChecked{m}, map[string]func(){
		"lockctl": func() { os.Exit(mainCode()) },
		"lockctl-dev": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			os.Exit(devserver.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
		},
	})
}

type leakChecked struct{ m *testing.M }

func (l leakChecked) Run() int {
	code := l.m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// TestScripts runs testdata/script/*.txtar, each against its own etcd.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			srv, err := etcdtest.Start(context.Background(), "")
			if err != nil {
				return err
			}
			env.Defer(func() { srv.Close() })
			env.Setenv("LOCKCTL_ENDPOINTS", srv.Endpoints()[0])
			examples, err := filepath.Abs("../../examples")
			if err != nil {
				return err
			}
			env.Setenv("EXAMPLES", examples)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			env.Setenv("FREEPORT", fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
			l.Close()
			return nil
		},
	})
}
