//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
)

// leaderNemesis kills (SIGKILL) the etcd leader every 5 s and restarts it
// after 1 s, or pauses it (SIGSTOP) for 3 s every 8 s when pause is set,
// waiting until the cluster is healthy before the next fault. It returns
// the faults injected.
func leaderNemesis(ctx context.Context, t *testing.T, c *chaos.ProcCluster, rec *chaos.Recorder, pause bool) int {
	every, down := 5*time.Second, time.Second
	if pause {
		every, down = 8*time.Second, 3*time.Second
	}
	n := 0
	for sleepCtx(ctx, every) {
		l := c.Leader(ctx)
		if l < 0 {
			continue
		}
		from := rec.Now()
		if pause {
			c.Stop(l)
			time.Sleep(down)
			c.Cont(l)
		} else {
			c.Kill(l)
			time.Sleep(down)
			if err := c.Restart(l); err != nil {
				t.Errorf("restart member %d: %v", l, err)
				return n
			}
		}
		n++
		what := "SIGKILL"
		if pause {
			what = "SIGSTOP"
		}
		rec.Note(fmt.Sprintf("%s leader %d", what, l), from, rec.Now())
		hctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := c.WaitHealthy(hctx)
		cancel()
		if err != nil {
			t.Errorf("after fault %d: %v", n, err)
			return n
		}
	}
	return n
}
