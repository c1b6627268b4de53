package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ProcCluster is an etcd cluster whose members are separate processes, so
// they can be killed (SIGKILL) and paused (SIGSTOP) as real crashes and
// stalls, which an in-process member's graceful Close is not. Its methods
// are safe for concurrent use.
type ProcCluster struct {
	tb      testing.TB
	bin     string
	members []*procMember
	client  *clientv3.Client
}

type procMember struct {
	name, dir, peer, client string
	initial                 string
	log                     string

	mu      sync.Mutex // guards cmd, exited, stopped
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// NewProcCluster starts n etcd processes on 127.0.0.1 (100 ms heartbeat,
// 1 s election timeout, no fsync), waits until they are healthy, and kills
// them when the test ends. Member logs are kept in the test's artifacts
// when it fails.
func NewProcCluster(tb testing.TB, n int) *ProcCluster {
	tb.Helper()
	c := &ProcCluster{tb: tb, bin: EtcdBinary(tb)}
	dir := tb.TempDir()
	var initial []string
	for i := range n {
		m := &procMember{name: fmt.Sprintf("p%d", i), dir: filepath.Join(dir, fmt.Sprintf("p%d", i))}
		m.peer = "http://" + freeAddr(tb)
		m.client = "http://" + freeAddr(tb)
		m.log = filepath.Join(dir, m.name+".log")
		initial = append(initial, m.name+"="+m.peer)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	tb.Cleanup(func() {
		if c.client != nil {
			c.client.Close()
		}
		for i := range c.members {
			c.Cont(i)
			c.Kill(i)
		}
		if tb.Failed() {
			for _, m := range c.members {
				if b, err := os.ReadFile(m.log); err == nil {
					os.WriteFile(filepath.Join(ArtifactDir(tb), m.name+".log"), b, 0o644)
				}
			}
		}
	})
	for i := range c.members {
		if err := c.start(i); err != nil {
			tb.Fatal(err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	c.client = cli
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *ProcCluster) start(i int) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("chaos: start %s: running", m.name)
	}
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin,
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", m.initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "chaos",
		"--heartbeat-interval", "100", "--election-timeout", "1000",
		"--unsafe-no-fsync", "--log-level", "warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("chaos: start %s: %w", m.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	m.cmd, m.exited, m.stopped = cmd, exited, false
	return nil
}

// Size returns the number of members.
func (c *ProcCluster) Size() int { return len(c.members) }

// Endpoints returns every member's client URL.
func (c *ProcCluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.client
	}
	return out
}

// Endpoint returns member i's client URL.
func (c *ProcCluster) Endpoint(i int) string { return c.members[i].client }

// Client returns the cluster's own client, connected to every member. Do
// not close it.
func (c *ProcCluster) Client() *clientv3.Client { return c.client }

// NewClient returns a new client connected to every member, closed when the
// test ends.
func (c *ProcCluster) NewClient(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

func (c *ProcCluster) signal(i int, sig syscall.Signal) bool {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	m.cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		m.stopped = true
	case syscall.SIGCONT:
		m.stopped = false
	}
	return true
}

// Kill SIGKILLs member i, as a crash, and waits until the process is gone.
// It is a no-op on a member that is not running.
func (c *ProcCluster) Kill(i int) {
	m := c.members[i]
	if !c.signal(i, syscall.SIGKILL) {
		return
	}
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	<-exited
	m.mu.Lock()
	m.cmd, m.stopped = nil, false
	m.mu.Unlock()
}

// Restart starts a killed member again on its data directory and URLs.
func (c *ProcCluster) Restart(i int) error { return c.start(i) }

// Stop pauses member i with SIGSTOP: it keeps its sockets but answers
// nothing, like a stalled machine.
func (c *ProcCluster) Stop(i int) { c.signal(i, syscall.SIGSTOP) }

// Cont resumes a member paused by [ProcCluster.Stop].
func (c *ProcCluster) Cont(i int) { c.signal(i, syscall.SIGCONT) }

// Running reports whether member i is started and not paused.
func (c *ProcCluster) Running(i int) bool {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !m.stopped
}

// Leader returns the index of the member every running member names as
// leader, or -1 if they do not agree or cannot be reached within ctx.
func (c *ProcCluster) Leader(ctx context.Context) int {
	var lead uint64
	idx := -1
	for i, m := range c.members {
		if !c.Running(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.client.Status(sctx, m.client)
		cancel()
		if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return -1
		}
		lead = st.Leader
		if st.Header.MemberId == st.Leader {
			idx = i
		}
	}
	return idx
}

// WaitHealthy waits until every running member answers, they agree on a
// leader that is one of them, and a linearizable read succeeds (etcd
// robustness's verifyClusterHealth), polling every 100 ms until ctx ends.
func (c *ProcCluster) WaitHealthy(ctx context.Context) error {
	for {
		if c.Leader(ctx) >= 0 {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.client.Get(rctx, "chaos-health")
			cancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: cluster not healthy: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
