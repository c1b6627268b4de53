package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/pkg/v3/proxy"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Member is one etcd server of a [Cluster]. Its methods are safe for
// concurrent use.
type Member struct {
	name      string
	dir       string
	clientURL url.URL
	peerURL   url.URL
	proxyURL  url.URL
	initial   string // the initial-cluster string shared by all members
	opts      options
	tls       *TLSFiles // nil without WithTLS

	mu    sync.Mutex   // guards etcd
	etcd  *embed.Etcd  // nil while stopped
	proxy proxy.Server // set once at start, closed by Cluster.Close
}

// Name returns the member's name in the cluster ("m0", "m1", ...).
func (m *Member) Name() string { return m.name }

// Endpoint returns the member's client URL, which connects to it directly.
func (m *Member) Endpoint() string { return m.clientURL.String() }

// ProxyEndpoint returns the URL of the member's proxy. Clients that connect
// through it can be cut off with [Member.Blackhole] or slowed down with
// [Member.Delay].
func (m *Member) ProxyEndpoint() string { return m.proxyURL.String() }

// Running reports whether the member is started.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil
}

// IsLeader reports whether the member is running and is the raft leader.
func (m *Member) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd == nil {
		return false
	}
	s := m.etcd.Server
	return s.Leader() != 0 && uint64(s.MemberID()) == uint64(s.Leader())
}

// ID returns the member's raft id, or 0 while it is stopped.
func (m *Member) ID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd == nil {
		return 0
	}
	return uint64(m.etcd.Server.MemberID())
}

// Stop shuts the member down gracefully, keeping its data directory. It is a
// no-op on a stopped member. Clients that still hold open streams to the
// member (watches, lease keep-alives) make it wait up to the server's request
// timeout (about 7 s with the default timing) before those streams are cut.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e == nil {
		return
	}
	e.Close()
	<-e.Server.StopNotify()
}

// Restart starts a stopped member again with its data and its URLs, and
// waits until it is ready to serve or ctx is done. It returns an error if the
// member is running.
func (m *Member) Restart(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return fmt.Errorf("etcdtest: restart %s: member is running", m.name)
	}
	// The port may be held for a while: by a connection being torn down,
	// or by another test's client that the kernel gave it as its local
	// port while the member was stopped. Try again until the start timeout.
	var err error
	deadline := time.Now().Add(m.opts.startTimeout)
	for try := 0; try == 0 || time.Now().Before(deadline); try++ {
		var e *embed.Etcd
		e, err = startEmbed(m.config())
		if err == nil {
			if err = waitReady(ctx, e, m.opts.startTimeout); err != nil {
				e.Close()
				return fmt.Errorf("etcdtest: restart %s: %w", m.name, err)
			}
			m.etcd = e
			return nil
		}
		if !isAddrInUse(err) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: restart %s: %w", m.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("etcdtest: restart %s: %w", m.name, err)
}

// Blackhole makes the member's proxy stop forwarding in both directions, as
// a network partition between the proxy's clients and the member would:
// connections stay open and nothing arrives, so clients see timeouts rather
// than errors. Bytes in flight are held, not dropped, so that after
// [Member.Unblackhole] the connections carry on as TCP would after a
// partition heals (dropping bytes would corrupt the HTTP/2 streams instead).
func (m *Member) Blackhole() {
	m.proxy.PauseTx()
	m.proxy.PauseRx()
}

// Unblackhole undoes [Member.Blackhole].
func (m *Member) Unblackhole() {
	m.proxy.UnpauseTx()
	m.proxy.UnpauseRx()
}

// Delay adds latency, plus or minus a random jitter, to traffic through the
// member's proxy in both directions.
func (m *Member) Delay(latency, jitter time.Duration) {
	m.proxy.DelayTx(latency, jitter)
	m.proxy.DelayRx(latency, jitter)
}

// DelayResponses adds latency only to what the member sends back, so that
// requests reach the server and take effect while the client waits: the
// ambiguous-outcome case.
func (m *Member) DelayResponses(latency, jitter time.Duration) {
	m.proxy.DelayRx(latency, jitter)
}

// Undelay removes the latency added by [Member.Delay] and
// [Member.DelayResponses].
func (m *Member) Undelay() {
	m.proxy.UndelayTx()
	m.proxy.UndelayRx()
}

func (m *Member) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.InitialCluster = m.initial
	if m.tls != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: m.tls.ServerCert, KeyFile: m.tls.ServerKey}
		// etcd requires client certificates whenever it is given a CA.
		if m.opts.clientCertAuth {
			cfg.ClientTLSInfo.TrustedCAFile = m.tls.CA
			cfg.ClientTLSInfo.ClientCertAuth = true
		}
	}
	cfg.InitialClusterToken = "etcdtest"
	cfg.TickMs = uint(m.opts.tick / time.Millisecond)
	cfg.ElectionMs = uint(m.opts.election / time.Millisecond)
	cfg.UnsafeNoFsync = !m.opts.fsync
	// Passwords are hashed at the least cost bcrypt allows: every log-in
	// compares one, and etcd's default cost makes every test of a user's
	// client slow, under the race detector most of all.
	cfg.BcryptCost = 4
	cfg.LogLevel = "error"
	lg := m.opts.logger
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.With(zap.String("member", m.name)))
	return cfg
}

func (m *Member) startProxy() error {
	lg := m.opts.logger
	if lg == nil {
		lg = zap.NewNop()
	}
	p := proxy.NewServer(proxy.ServerConfig{
		Logger: lg.With(zap.String("proxy", m.name)),
		From:   m.proxyURL,
		To:     m.clientURL,
	})
	select {
	case <-p.Ready():
		m.proxy = p
		return nil
	case err := <-p.Error():
		p.Close()
		return fmt.Errorf("etcdtest: proxy for %s: %w", m.name, err)
	}
}

func startEmbed(cfg *embed.Config) (*embed.Etcd, error) {
	return embed.StartEtcd(cfg)
}

// waitReady waits until e serves clients, its start fails, or the time runs
// out; it never blocks for longer than timeout.
func waitReady(ctx context.Context, e *embed.Etcd, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err, ok := <-e.Err():
		if !ok || err == nil {
			err = errors.New("server stopped while starting")
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("not ready after %v (is another member of the cluster down?)", timeout)
	}
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before we listen on it; callers retry on "address already in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Dir returns the member's data directory.
func (m *Member) Dir() string { return m.dir }
