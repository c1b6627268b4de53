package observe_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/coordkit/coordkit/barrier"
	"github.com/coordkit/coordkit/internal/testutil"
	"github.com/coordkit/coordkit/observe"
	"github.com/coordkit/coordkit/queue"
)

// TestSlogQueueClaim: a queue's claim is logged as an acquisition, and
// its Ack as a release.
func TestSlogQueueClaim(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	t.Cleanup(func() { cli.Delete(context.Background(), pfx+"q/seq") }) // the queue's sequence counter
	recs := &records{}
	q := queue.New(cli, pfx+"q", queue.WithSession(testutil.Session(t, cli, 10)),
		queue.WithObserver(observe.Slog(slog.New(recs))))
	ctx := t.Context()
	if err := q.Enqueue(ctx, []byte("job")); err != nil {
		t.Fatal(err)
	}
	c, err := q.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs.wait(t, map[string]string{"msg": "coordkit: acquire", "kind": "queue", "name": pfx + "q/", "result": "acquired"})
	if err := c.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	recs.wait(t, map[string]string{"msg": "coordkit: release", "kind": "queue", "name": pfx + "q/"})
}

// TestSlogDoubleBarrier: each participant's entry is logged as an
// acquisition of kind barrier.
func TestSlogDoubleBarrier(t *testing.T) {
	t.Parallel()
	cli := testutil.Client(t, srv)
	pfx := testutil.Prefix(t, cli)
	recs := &records{}
	o := observe.Slog(slog.New(recs))
	a := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"b", 2, barrier.WithObserver(o))
	b := barrier.NewDouble(testutil.Session(t, cli, 10), pfx+"b", 2, barrier.WithObserver(o))
	ctx := t.Context()
	entered := make(chan error, 1)
	go func() { entered <- a.Enter(ctx) }()
	if err := b.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-entered; err != nil {
		t.Fatal(err)
	}
	left := make(chan error, 1)
	go func() { left <- a.Leave(ctx) }()
	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-left; err != nil {
		t.Fatal(err)
	}
	recs.mu.Lock()
	n := 0
	for _, r := range recs.recs {
		if r["msg"] == "coordkit: acquire" && r["kind"] == "barrier" && r["result"] == "acquired" {
			n++
		}
	}
	recs.mu.Unlock()
	if n != 2 {
		t.Fatalf("barrier acquisitions logged: %d, want 2 %s", n, fmt.Sprint(recs.recs))
	}
}
