package chaos

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// StaleAccepted returns the fenced operations (begin, read, write) that the
// store accepted although an earlier accepted operation carried a higher
// token. In an [Enforcing] store it must be empty by construction: it
// checks the store and the client plumbing (C-FENCE staleAccepted).
func StaleAccepted(log []Event) []Event {
	var out []Event
	var hi int64
	for _, ev := range log {
		if !ev.Accepted || ev.Kind == KindEnd {
			continue
		}
		if ev.Tok < hi {
			out = append(out, ev)
		}
		hi = max(hi, ev.Tok)
	}
	return out
}

// Overlaps returns the accepted writes made with a token lower than that of
// an operation accepted before them: a holder that acted after its successor
// had begun. Over a [Recording] store's log this is "overlapping critical
// sections as judged by fencing tokens" (C-FENCE overlap).
func Overlaps(log []Event) []Event {
	var out []Event
	var hi int64
	for _, ev := range log {
		if !ev.Accepted || ev.Kind == KindEnd {
			continue
		}
		if ev.Kind == KindWrite && ev.Tok < hi {
			out = append(out, ev)
		}
		hi = max(hi, ev.Tok)
	}
	return out
}

// LateEnds returns the end events of holds whose holder learnt of the end
// only after a holder with a higher token had begun: a holder that did not
// fence itself in time. Holds that ended by unlocking are not late.
func LateEnds(log []Event) []Event {
	var out []Event
	var hi int64
	for _, ev := range log {
		switch ev.Kind {
		case KindEnd:
			if ev.Tok < hi {
				out = append(out, ev)
			}
		case KindBegin:
			hi = max(hi, ev.Tok)
		}
	}
	return out
}

// Begins returns the tokens of the begin events in the log, in log order.
func Begins(log []Event) []int64 {
	var out []int64
	for _, ev := range log {
		if ev.Kind == KindBegin {
			out = append(out, ev.Tok)
		}
	}
	return out
}

// TokensIncrease returns an error naming the first token that is not
// greater than the one before it (C-FENCE tokenMonotonic), given the tokens
// in grant order.
func TokensIncrease(tokens []int64) error {
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			return fmt.Errorf("token %d (grant %d) does not exceed the previous grant's %d", tokens[i], i, tokens[i-1])
		}
	}
	return nil
}

// LostAdds returns the acknowledged elements missing from the final set
// (C-SET): updates that a client was told had been made and that were lost.
func LostAdds(acked, final []int) []int {
	var out []int
	for _, x := range acked {
		if !slices.Contains(final, x) {
			out = append(out, x)
		}
	}
	return out
}

// RequireAtLeast fails the test if got < min: the guard against a scenario
// that passes because too little happened.
func RequireAtLeast(tb testing.TB, what string, got, min int) {
	tb.Helper()
	if got < min {
		tb.Errorf("vacuous run: %d %s, want at least %d", got, what, min)
	}
}

// RequireBit fails the test if the fault never bit: n counts the times its
// effect was observed (a lease expired, a stale write attempted).
func RequireBit(tb testing.TB, fault string, n int) {
	tb.Helper()
	if n == 0 {
		tb.Errorf("the fault %q never bit: the run proves nothing", fault)
	}
}

// Report logs a scenario's figures on one line, for the run's record.
func Report(tb testing.TB, scenario string, kv ...any) {
	tb.Helper()
	s := scenario + ":"
	for i := 0; i+1 < len(kv); i += 2 {
		s += fmt.Sprintf(" %v=%v", kv[i], kv[i+1])
	}
	tb.Log(s)
}

// Owners replays every change under prefix between revisions from and to
// (inclusive) from etcd's history and returns the create revisions of the
// keys that owned the line (the lowest create revision present) after each
// change, without repeats: the tokens that were really granted, in grant
// order. It needs the history uncompacted since from.
func Owners(ctx context.Context, cli *clientv3.Client, prefix string, from, to int64) ([]int64, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("chaos: owners: %w", err)
	}
	live := map[string]int64{}
	for _, kv := range resp.Kvs {
		live[string(kv.Key)] = kv.CreateRevision
	}
	var out []int64
	note := func() {
		var lo int64
		for _, rev := range live {
			if lo == 0 || rev < lo {
				lo = rev
			}
		}
		if lo != 0 && (len(out) == 0 || out[len(out)-1] != lo) {
			out = append(out, lo)
		}
	}
	note()
	if to <= from {
		return out, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
			// A progress notification, once the watch has caught up, says
			// every event up to its revision has been delivered.
			cli.RequestProgress(wctx)
			continue
		case wr, ok := <-wch:
			if !ok {
				return out, fmt.Errorf("chaos: owners: watch closed")
			}
			if err := wr.Err(); err != nil {
				return out, fmt.Errorf("chaos: owners: %w", err)
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision > to {
					return out, nil
				}
				if ev.Type == mvccpb.DELETE {
					delete(live, string(ev.Kv.Key))
				} else {
					live[string(ev.Kv.Key)] = ev.Kv.CreateRevision
				}
				note()
			}
			if wr.IsProgressNotify() && wr.Header.Revision >= to {
				return out, nil
			}
		}
	}
}

// Ungranted returns the tokens in granted that never owned the line
// according to owners (from [Owners]): a Lock that returned a hold the
// store never gave.
func Ungranted(granted, owners []int64) []int64 {
	var out []int64
	for _, tok := range granted {
		if !slices.Contains(owners, tok) {
			out = append(out, tok)
		}
	}
	return out
}
