package observe_test

import (
	"testing"

	"github.com/coordkit/coordkit/observe"
)

// TestJoin: a joined observer calls each observer's hook in order and
// skips nil observers and nil hooks; with nothing to join it is nil.
func TestJoin(t *testing.T) {
	if o := observe.Join(nil, nil); o != nil {
		t.Fatalf("Join(nil, nil) = %v, want nil", o)
	}
	var got []string
	a := &observe.Observer{Lost: func(e observe.Loss) { got = append(got, "a:"+e.Reason) }}
	b := &observe.Observer{
		Lost:     func(e observe.Loss) { got = append(got, "b:"+e.Reason) },
		Released: func(observe.Release) { got = append(got, "b:released") },
	}
	if o := observe.Join(nil, a); o != a {
		t.Fatalf("Join(nil, a) = %p, want a (%p)", o, a)
	}
	o := observe.Join(a, nil, b)
	o.Lost(observe.Loss{Reason: observe.ReasonDeleted})
	o.Released(observe.Release{})
	if o.Retried != nil {
		t.Error("Join(a, b).Retried != nil, though neither has one")
	}
	want := []string{"a:deleted", "b:deleted", "b:released"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("hooks called: %v, want %v", got, want)
	}
}
