package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster of one or more in-process members. Its
// methods are safe for concurrent use.
type Cluster struct {
	members []*Member
	client  *clientv3.Client
	dir     string
	ownDir  bool // dir was created by Start and is removed by Close
	close   sync.Once
}

// NewServer starts a one-member etcd and stops it when the test ends. It
// fails the test if the server does not become ready.
func NewServer(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	return NewCluster(tb, 1, opts...)
}

// NewCluster starts an etcd cluster of n members (3 is the usual choice for
// fault tests) and stops it when the test ends. It returns once the cluster
// has a leader and serves requests, and fails the test if n < 1 or the
// cluster does not become ready.
func NewCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("etcdtest: NewCluster(%d): a cluster needs at least one member", n)
	}
	c, err := start(tb.Context(), n, tb.TempDir(), false, buildOptions(opts))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// Start starts a one-member etcd outside of tests, for examples and tools
// such as "lockctl dev". Its data lives in dir, or in a new temporary
// directory that Close removes when dir is empty. The caller must call
// [Cluster.Close].
func Start(ctx context.Context, dir string, opts ...Option) (*Cluster, error) {
	own := false
	if dir == "" {
		d, err := os.MkdirTemp("", "etcdtest-")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		dir, own = d, true
	}
	c, err := start(ctx, 1, dir, own, buildOptions(opts))
	if err != nil && own {
		os.RemoveAll(dir)
	}
	return c, err
}

func start(ctx context.Context, n int, dir string, own bool, o options) (*Cluster, error) {
	if o.election < 5*o.tick || o.tick < time.Millisecond {
		return nil, fmt.Errorf("etcdtest: heartbeat %v and election timeout %v: the election timeout must be at least five heartbeats", o.tick, o.election)
	}
	if o.clientAddr != "" && n != 1 {
		return nil, errors.New("etcdtest: WithClientAddr works only for a one-member server")
	}
	var err error
	// A free port can be taken by someone else before etcd binds it: retry
	// with new ports a few times before giving up.
	for attempt := 0; attempt < 5; attempt++ {
		var c *Cluster
		c, err = tryStart(ctx, n, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), o)
		if err == nil {
			c.dir, c.ownDir = dir, own
			return c, nil
		}
		if !isAddrInUse(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func tryStart(ctx context.Context, n int, dir string, o options) (_ *Cluster, err error) {
	c := &Cluster{}
	defer func() {
		if err != nil {
			c.shutdown()
		}
	}()
	var initial []string
	for i := range n {
		m := &Member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(dir, fmt.Sprintf("m%d", i)), opts: o}
		ports := make([]int, 3)
		for j := range ports {
			if ports[j], err = freePort(); err != nil {
				return nil, fmt.Errorf("etcdtest: %w", err)
			}
		}
		client := fmt.Sprintf("127.0.0.1:%d", ports[0])
		if o.clientAddr != "" {
			client = o.clientAddr
		}
		m.clientURL = url.URL{Scheme: "http", Host: client}
		m.peerURL = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
		m.proxyURL = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2])}
		initial = append(initial, m.name+"="+m.peerURL.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		e, err := startEmbed(m.config())
		if err != nil {
			return nil, fmt.Errorf("etcdtest: start %s: %w", m.name, err)
		}
		m.etcd = e
		if m.clientURL.Port() == "0" && len(e.Clients) > 0 {
			// WithClientAddr with port 0: the kernel chose the port, and
			// the endpoint must name it.
			m.clientURL.Host = e.Clients[0].Addr().String()
		}
	}
	for _, m := range c.members {
		if err := waitReady(ctx, m.etcd, o.startTimeout); err != nil {
			return nil, fmt.Errorf("etcdtest: start %s: %w", m.name, err)
		}
		if err := m.startProxy(); err != nil {
			return nil, err
		}
	}
	c.client, err = clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdtest: client: %w", err)
	}
	// Ready members can still be without a leader for a moment; a linearizable
	// read succeeds only once one is elected.
	rctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	if _, err := c.client.Get(rctx, "etcdtest-ready"); err != nil {
		return nil, fmt.Errorf("etcdtest: first request: %w", err)
	}
	return c, nil
}

// Close closes the cluster's client, stops every member and its proxy, and
// removes the data directory if [Start] created it. Clients made by the
// caller should be closed first: a proxy waits for the connections through
// it to end. Close is idempotent.
func (c *Cluster) Close() error {
	var err error
	c.close.Do(func() {
		c.shutdown()
		if c.ownDir {
			err = os.RemoveAll(c.dir)
		}
	})
	return err
}

func (c *Cluster) shutdown() {
	if c.client != nil {
		c.client.Close()
	}
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(m.Stop)
	}
	wg.Wait()
	for _, m := range c.members {
		if m.proxy != nil {
			m.proxy.Close()
		}
	}
}

// Client returns a client connected directly to every member. It is closed
// by [Cluster.Close]; do not close it yourself.
func (c *Cluster) Client() *clientv3.Client { return c.client }

// Endpoints returns the client URLs of all members, for direct connections.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.Endpoint()
	}
	return eps
}

// Size returns the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Member returns member i, counting from 0.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// NewClient returns a new client connected directly to every member, closed
// when the test ends. Use one client per simulated process: a lease or a
// watch of one does not interfere with another's.
func (c *Cluster) NewClient(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return newTBClient(tb, c.Endpoints())
}

// ProxyClient returns a new client that reaches member i only through its
// proxy, closed when the test ends. [Member.Blackhole] on member i cuts this
// client off from the whole cluster.
func (c *Cluster) ProxyClient(tb testing.TB, i int) *clientv3.Client {
	tb.Helper()
	return newTBClient(tb, []string{c.members[i].ProxyEndpoint()})
}

func newTBClient(tb testing.TB, eps []string) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		tb.Fatalf("etcdtest: client for %v: %v", eps, err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that is leader, or -1 if no
// running member is.
func (c *Cluster) Leader() int {
	for i, m := range c.members {
		if m.IsLeader() {
			return i
		}
	}
	return -1
}

// WaitLeader waits until a running member is leader and every running
// member agrees on it, and returns its index. It polls every 50 ms until ctx
// is done.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if i := c.agreedLeader(); i >= 0 {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("etcdtest: wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Cluster) agreedLeader() int {
	var lead uint64
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e == nil {
			continue
		}
		l := uint64(e.Server.Leader())
		if l == 0 || (lead != 0 && l != lead) {
			return -1
		}
		lead = l
	}
	for i, m := range c.members {
		if lead != 0 && m.ID() == lead {
			return i
		}
	}
	return -1
}

// Compact compacts the key-value history up to the current revision and
// returns that revision. Watches that start before it then fail with
// rpctypes.ErrCompacted.
func (c *Cluster) Compact(ctx context.Context) (int64, error) {
	resp, err := c.client.Get(ctx, "etcdtest-compact")
	if err != nil {
		return 0, fmt.Errorf("etcdtest: compact: %w", err)
	}
	rev := resp.Header.Revision
	if _, err := c.client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return 0, fmt.Errorf("etcdtest: compact to %d: %w", rev, err)
	}
	return rev, nil
}
