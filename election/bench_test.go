package election_test

import (
	"testing"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/testutil"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// BenchmarkCampaignResign is an uncontended Campaign+Resign cycle,
// coordkit's and etcd's on the same server. cmd/coordbench prints the
// ratios, and the handoff and failover figures.
func BenchmarkCampaignResign(b *testing.B) {
	cli := testutil.Client(b, srv)
	s := testutil.Session(b, cli, 10)
	b.Run("coordkit", func(b *testing.B) {
		e := election.New(s, "/bench/coordkit")
		for b.Loop() {
			if err := e.Campaign(b.Context(), "v"); err != nil {
				b.Fatal(err)
			}
			if err := e.Resign(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		e := concurrency.NewElection(s, "/bench/etcd")
		for b.Loop() {
			if err := e.Campaign(b.Context(), "v"); err != nil {
				b.Fatal(err)
			}
			if err := e.Resign(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
