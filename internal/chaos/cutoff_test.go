//go:build chaos

package chaos_test

import (
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cutoff is one proxy per member of a cluster, for one client (in this
// process or a helper's): partitioning them all cuts that client off from
// the whole cluster, while a killed member only breaks its own proxy's
// connections, as it would a direct client's.
type cutoff []*chaos.Proxy

// newCutoff starts a proxy to every member of c.
func newCutoff(t *testing.T, c *chaos.ProcCluster) cutoff {
	t.Helper()
	var p cutoff
	for i := range c.Size() {
		p = append(p, chaos.NewProxy(t, c.Endpoint(i)))
	}
	return p
}

// endpoints returns the proxies' URLs.
func (p cutoff) endpoints() []string {
	var out []string
	for _, px := range p {
		out = append(out, px.Endpoint())
	}
	return out
}

// client returns a client that reaches the cluster through the proxies
// only, closed when the test ends (before the proxies).
func (p cutoff) client(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: p.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// partition cuts the client off from every member.
func (p cutoff) partition() {
	for _, px := range p {
		px.Partition()
	}
}

// heal undoes partition.
func (p cutoff) heal() {
	for _, px := range p {
		px.Heal()
	}
}
