package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/examples/gateway/gw"
	"github.com/coordkit/coordkit/examples/internal/demo"
)

// caller sends requests to the gateway and prints what comes back.
type caller struct {
	env    *demo.Env
	base   string
	client http.Client
}

// get sends GET path and prints the outcome.
func (c *caller) get(ctx context.Context, path string) (status int, from, body string) {
	status, from, body = c.quiet(ctx, path)
	c.env.Say("  GET %-22s -> %d %s", path, status, body)
	return status, from, body
}

// quiet sends GET path and returns the status, the instance that answered
// (the X-Gateway-Instance header) and the body's first line.
func (c *caller) quiet(ctx context.Context, path string) (status int, from, body string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, "", err.Error()
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Gateway-Instance"), strings.TrimSpace(string(b))
}

// spread sends n requests and checks that exactly the instances ids
// answered them, and every one of those at least once.
func (c *caller) spread(ctx context.Context, path string, n int, ids ...string) error {
	seen := map[string]bool{}
	for range n {
		status, from, body := c.get(ctx, path)
		if status != 200 || !slices.Contains(ids, from) {
			return fmt.Errorf("GET %s: %d from %q (%s), want 200 from one of %v", path, status, from, body, ids)
		}
		seen[from] = true
	}
	if len(seen) != len(ids) {
		return fmt.Errorf("GET %s: answered by %v, want each of %v", path, seen, ids)
	}
	return nil
}

// waitInstances waits until the gateway's serving instances of service
// are exactly ids.
func (c *caller) waitInstances(ctx context.Context, g *gw.Gateway, service string, ids ...string) error {
	for {
		var got []string
		for _, in := range g.Instances(ctx, service) {
			got = append(got, in.ID)
		}
		if slices.Equal(got, ids) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instances of %s are %v, want %v: %w", service, got, ids, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// child is a backend in a process of its own.
type child struct {
	cmd    *exec.Cmd
	output chan struct{} // closed when its output has been read to the end
	killed bool
}

// startChild runs this program's backend subcommand against the same etcd
// and waits until it says it is registered.
func startChild(ctx context.Context, env *demo.Env, args []string, service, id string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if env.Embedded() != nil {
		args = []string{"-endpoints", strings.Join(env.Endpoints, ",")}
	}
	cmd := exec.Command(self, append([]string{"backend", "-service", service, "-id", id, "-ttl", fmt.Sprint(ttl), "--"}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, output: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(ch.output)
		said := false
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if sc.Text() == "ready" && !said {
				said = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
		return ch, nil
	case <-ch.output:
		err = errors.New("it exited")
	case <-ctx.Done():
		err = ctx.Err()
	}
	ch.kill()
	return nil, fmt.Errorf("backend %s did not start: %w", id, err)
}

// kill sends SIGKILL, as a crash would: the child deregisters nothing. It
// waits for the process and may be called more than once.
func (c *child) kill() {
	if c.killed {
		return
	}
	c.killed = true
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.output
	c.cmd.Wait()
}
