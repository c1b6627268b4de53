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

	"go.etcd.io/etcd/client/pkg/v3/transport"
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
	opts    options
	tls     *TLSFiles // nil without WithTLS
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
	return StartCluster(ctx, 1, dir, opts...)
}

// StartCluster is [Start] for a cluster of n members, for tools that
// measure what a quorum costs (such as coordbench -members 3). It panics
// if n is less than 1.
func StartCluster(ctx context.Context, n int, dir string, opts ...Option) (*Cluster, error) {
	if n < 1 {
		panic(fmt.Sprintf("etcdtest: StartCluster with %d members", n))
	}
	own := false
	if dir == "" {
		d, err := os.MkdirTemp("", "etcdtest-")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		dir, own = d, true
	}
	c, err := start(ctx, n, dir, own, buildOptions(opts))
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
	var tlsFiles *TLSFiles
	if o.tls {
		f, err := NewTLSFiles(filepath.Join(dir, "tls"))
		if err != nil {
			return nil, err
		}
		tlsFiles = &f
	}
	var err error
	// A free port can be taken by someone else before etcd binds it: retry
	// with new ports a few times before giving up.
	for attempt := 0; attempt < 5; attempt++ {
		var c *Cluster
		c, err = tryStart(ctx, n, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), o, tlsFiles)
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

func tryStart(ctx context.Context, n int, dir string, o options, tlsFiles *TLSFiles) (_ *Cluster, err error) {
	c := &Cluster{opts: o, tls: tlsFiles}
	scheme := "http"
	if tlsFiles != nil {
		scheme = "https"
	}
	defer func() {
		if err != nil {
			c.shutdown()
		}
	}()
	var initial []string
	// The kernel may hand out a port again once its listener is closed:
	// each of the cluster's ports must differ from the others.
	used := make(map[int]bool)
	for i := range n {
		m := &Member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(dir, fmt.Sprintf("m%d", i)), opts: o, tls: tlsFiles}
		ports := make([]int, 3)
		for j := range ports {
			for ports[j] == 0 || used[ports[j]] {
				if ports[j], err = freePort(); err != nil {
					return nil, fmt.Errorf("etcdtest: %w", err)
				}
			}
			used[ports[j]] = true
		}
		client := fmt.Sprintf("127.0.0.1:%d", ports[0])
		if o.clientAddr != "" {
			client = o.clientAddr
		}
		m.clientURL = url.URL{Scheme: scheme, Host: client}
		m.peerURL = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
		m.proxyURL = url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", ports[2])}
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
	// Auth is enabled through a client without credentials, which is then
	// replaced by one that logs in as root.
	cfg, err := c.clientConfig(c.Endpoints(), false)
	if err == nil {
		c.client, err = clientv3.New(cfg)
	}
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
	if o.rootPassword != "" {
		if err := enableAuth(rctx, c.client, o.rootPassword); err != nil {
			return nil, err
		}
		c.client.Close()
		c.client = nil
		if cfg, err = c.clientConfig(c.Endpoints(), true); err == nil {
			c.client, err = clientv3.New(cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("etcdtest: client: %w", err)
		}
	}
	return c, nil
}

// clientConfig is the configuration of the cluster's own clients: its CA
// and client certificate with TLS, root's credentials with auth when
// asRoot.
func (c *Cluster) clientConfig(eps []string, asRoot bool) (clientv3.Config, error) {
	cfg := clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}
	if c.tls != nil {
		info := transport.TLSInfo{TrustedCAFile: c.tls.CA, CertFile: c.tls.Cert, KeyFile: c.tls.Key}
		tc, err := info.ClientConfig()
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	if asRoot && c.opts.rootPassword != "" {
		cfg.Username, cfg.Password = "root", c.opts.rootPassword
	}
	return cfg, nil
}

func enableAuth(ctx context.Context, cli *clientv3.Client, rootPassword string) error {
	for _, step := range []func() error{
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("etcdtest: enable auth: %w", err)
		}
	}
	return nil
}

// AddUser creates the etcd user name with password, and a role of the same
// name that may read and write every key under each of prefixes (none: no
// key at all) and grants it to the user, as an operator would with
// "etcdctl role grant-permission --prefix NAME readwrite PREFIX". It works
// with or without [WithAuth]; etcd enforces the role only with auth on.
func (c *Cluster) AddUser(ctx context.Context, name, password string, prefixes ...string) error {
	cli := c.client
	if _, err := cli.RoleAdd(ctx, name); err != nil {
		return fmt.Errorf("etcdtest: add user %s: %w", name, err)
	}
	for _, p := range prefixes {
		end := clientv3.GetPrefixRangeEnd(p)
		if _, err := cli.RoleGrantPermission(ctx, name, p, end, clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
			return fmt.Errorf("etcdtest: add user %s: grant %q: %w", name, p, err)
		}
	}
	if _, err := cli.UserAdd(ctx, name, password); err != nil {
		return fmt.Errorf("etcdtest: add user %s: %w", name, err)
	}
	if _, err := cli.UserGrantRole(ctx, name, name); err != nil {
		return fmt.Errorf("etcdtest: add user %s: %w", name, err)
	}
	return nil
}

// TLSFiles returns the CA and client certificate files of a cluster started
// with [WithTLS] or [WithClientCertAuth], and the zero TLSFiles otherwise.
func (c *Cluster) TLSFiles() TLSFiles {
	if c.tls == nil {
		return TLSFiles{}
	}
	return *c.tls
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
// by [Cluster.Close]; do not close it yourself. With [WithTLS] it uses
// [Cluster.TLSFiles]; with [WithAuth] it is logged in as root.
func (c *Cluster) Client() *clientv3.Client { return c.client }

// Endpoints returns the client URLs of all members, for direct connections:
// https:// URLs with [WithTLS], http:// ones otherwise.
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
// watch of one does not interfere with another's. Like [Cluster.Client],
// it uses the cluster's TLS files and root's credentials when it has them.
func (c *Cluster) NewClient(tb testing.TB) *clientv3.Client {
	tb.Helper()
	return c.newTBClient(tb, c.Endpoints())
}

// ProxyClient returns a new client that reaches member i only through its
// proxy, closed when the test ends. [Member.Blackhole] on member i cuts this
// client off from the whole cluster.
func (c *Cluster) ProxyClient(tb testing.TB, i int) *clientv3.Client {
	tb.Helper()
	return c.newTBClient(tb, []string{c.members[i].ProxyEndpoint()})
}

func (c *Cluster) newTBClient(tb testing.TB, eps []string) *clientv3.Client {
	tb.Helper()
	cfg, err := c.clientConfig(eps, true)
	if err != nil {
		tb.Fatalf("etcdtest: client for %v: %v", eps, err)
	}
	cli, err := clientv3.New(cfg)
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
