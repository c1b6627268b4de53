//go:build chaos

package chaos_test

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coordkit/coordkit/internal/chaos"
)

// holders is the parent's view of its holder processes, built from their
// lines. Its methods are safe for concurrent use.
type holders struct {
	rec *chaos.Recorder

	mu                          sync.Mutex        // guards the rest
	holding                     map[int]time.Time // in the critical section since (ACQUIRED, not yet RELEASING)
	acquired, failed, lostHolds int
	failures                    map[string]int // FAILED errors by text
	noKey                       []window       // NOKEY reports: helper, from Acquire's return to the report
	fencedAcked, controlAcked   []int
	staleRejected               int
	grants                      []grant
}

// window is a span of the recorder's clock concerning one helper.
type window struct {
	helper   int
	from, to int64
}

// overlapsAny reports whether w overlaps a window of the same helper.
func (w window) overlapsAny(ws []window) bool {
	for _, o := range ws {
		if o.helper == w.helper && o.from <= w.to && w.from <= o.to {
			return true
		}
	}
	return false
}

type grant struct {
	helper int
	tok    int64
	at     int64 // recorder clock, when Lock returned
}

func newHolders(rec *chaos.Recorder) *holders {
	return &holders{rec: rec, holding: map[int]time.Time{}}
}

func (h *holders) consume(l chaos.Line) {
	f := l.Fields
	num := func(i int) int64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return n
	}
	at := func(i int) int64 { return h.rec.At(time.Unix(0, num(i))) }
	if len(f) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := l.Helper
	switch f[0] {
	case "ACQUIRED":
		h.acquired++
		h.holding[c] = l.At
		h.grants = append(h.grants, grant{helper: c, tok: num(1), at: at(3)})
		h.rec.Add(c, chaos.MutexOp{Client: c}, chaos.OK, at(2), at(3), false)
	case "NOKEY":
		h.noKey = append(h.noKey, window{helper: c, from: at(3), to: h.rec.At(l.At)})
	case "FAILED":
		h.failed++
		if len(f) > 3 {
			msg, err := strconv.Unquote(strings.Join(f[3:], " "))
			if err != nil {
				msg = strings.Join(f[3:], " ")
			}
			if h.failures == nil {
				h.failures = map[string]int{}
			}
			h.failures[msg]++
		}
		h.rec.Add(c, chaos.MutexOp{Client: c}, chaos.Fail, at(1), at(2), false)
	case "WROTE":
		x := int(num(2))
		if len(f) > 4 {
			switch f[3] {
			case "ok":
				h.fencedAcked = append(h.fencedAcked, x)
			case "stale":
				h.staleRejected++
			}
			if f[4] == "ok" {
				h.controlAcked = append(h.controlAcked, x)
			}
		}
	case "RELEASING":
		delete(h.holding, c)
	case "UNLOCKED":
		delete(h.holding, c)
		out := chaos.OK
		if len(f) > 4 && f[4] != "ok" {
			out = chaos.Unknown
			if f[4] == "lost" {
				h.lostHolds++
			}
		}
		h.rec.Add(c, chaos.MutexOp{Client: c, Release: true}, out, at(2), at(3), false)
	}
}

// fresh returns a helper that entered its critical section less than d
// ago and has not left it, or -1.
func (h *holders) fresh(d time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, since := range h.holding {
		if time.Since(since) < d {
			return c
		}
	}
	return -1
}

// grantedDuring counts grants to helpers other than c between from and to
// (recorder clock).
func (h *holders) grantedDuring(c int, from, to int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, g := range h.grants {
		if g.helper != c && g.at >= from && g.at <= to {
			n++
		}
	}
	return n
}

// tokens returns the granted tokens.
func (h *holders) tokens() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int64, len(h.grants))
	for i, g := range h.grants {
		out[i] = g.tok
	}
	return out
}

// collect feeds lines to h until lines is closed, then closes done.
func (h *holders) collect(lines <-chan chaos.Line, done chan<- struct{}) {
	defer close(done)
	for l := range lines {
		h.consume(l)
	}
}
