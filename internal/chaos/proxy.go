package chaos

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/pkg/v3/proxy"
	"go.uber.org/zap"
)

// Proxy is a TCP proxy in front of one etcd member, meant for one client:
// cutting it off or delaying it affects that client alone, so several
// trials can run side by side against one server. Its methods are safe for
// concurrent use.
type Proxy struct {
	p   proxy.Server
	url string
}

// NewProxy starts a proxy to the member at endpoint (a client URL such as
// "http://127.0.0.1:2379"), closed when the test ends, after the clients
// made with [Proxy.Client].
func NewProxy(tb testing.TB, endpoint string) *Proxy {
	tb.Helper()
	to, err := url.Parse(endpoint)
	if err != nil {
		tb.Fatalf("proxy to %q: %v", endpoint, err)
	}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("proxy: %v", err)
		}
		from := url.URL{Scheme: "http", Host: l.Addr().String()}
		l.Close()
		p := proxy.NewServer(proxy.ServerConfig{Logger: zap.NewNop(), From: from, To: *to})
		select {
		case <-p.Ready():
			px := &Proxy{p: p, url: from.String()}
			tb.Cleanup(func() {
				px.Heal()
				p.Close()
			})
			return px
		case err := <-p.Error():
			p.Close()
			if attempt >= 5 {
				tb.Fatalf("proxy to %s: %v", endpoint, err)
			}
		}
	}
}

// Endpoint returns the URL clients connect to.
func (p *Proxy) Endpoint() string { return p.url }

// Client returns a new client that reaches etcd only through the proxy,
// closed when the test ends.
func (p *Proxy) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{p.url},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		tb.Fatalf("client through %s: %v", p.url, err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Partition stops forwarding in both directions, as a network partition
// would: connections stay open and nothing arrives. Bytes in flight are
// held, not dropped, so [Proxy.Heal] resumes the connections as TCP would.
func (p *Proxy) Partition() {
	p.p.PauseTx()
	p.p.PauseRx()
}

// Heal undoes [Proxy.Partition] and removes any delay.
func (p *Proxy) Heal() {
	p.p.UnpauseTx()
	p.p.UnpauseRx()
	p.p.UndelayTx()
	p.p.UndelayRx()
}

// DelayResponses delays what the member sends back by d (± jitter), so
// requests take effect while their clients wait: the ambiguous-outcome
// case.
func (p *Proxy) DelayResponses(d, jitter time.Duration) { p.p.DelayRx(d, jitter) }

// Delay delays traffic in both directions by d (± jitter).
func (p *Proxy) Delay(d, jitter time.Duration) {
	p.p.DelayTx(d, jitter)
	p.p.DelayRx(d, jitter)
}

// Undelay removes the delays.
func (p *Proxy) Undelay() {
	p.p.UndelayTx()
	p.p.UndelayRx()
}

func (p *Proxy) String() string { return fmt.Sprintf("proxy %s → %s", p.url, p.p.To()) }
