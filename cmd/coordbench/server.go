package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/coordkit/coordkit/etcdtest"
)

// serveEnv, when set, makes coordbench serve an embedded etcd instead of
// measuring: it is how -server process runs the server in a child process.
const serveEnv = "COORDBENCH_SERVE"

// serve runs an embedded etcd, prints its client URL on stdout, and stops
// when stdin closes (the parent is done, or died).
func serve(stdin io.Reader, stdout, stderr io.Writer) int {
	srv, err := etcdtest.Start(context.Background(), "")
	if err != nil {
		fmt.Fprintf(stderr, "coordbench: start etcd: %v\n", err)
		return 1
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "endpoint %s\n", srv.Endpoints()[0])
	io.Copy(io.Discard, stdin)
	return 0
}

// startChild starts an embedded etcd in a child process: its own Go
// runtime, heap and garbage collector, as a real deployment's server has,
// rather than sharing them with the clients being measured. stop ends it.
func startChild(ctx context.Context) (endpoint string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		if ep, ok := strings.CutPrefix(strings.TrimSpace(s), "endpoint "); ok {
			return ep, stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("server process said %q", s)
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}
