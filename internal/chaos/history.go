package chaos

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder collects a history of operations for porcupine: per client,
// each operation's input and output with its call and return times on one
// monotonic base, plus annotations for the faults injected. Its methods are
// safe for concurrent use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex // guards ops, unknown, notes
	ops     []porcupine.Operation
	unknown map[int]bool
	notes   []porcupine.Annotation
}

// NewRecorder returns an empty history whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), unknown: map[int]bool{}}
}

// Now returns the recorder's clock: nanoseconds since it started.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// At converts a wall-clock time (from another process on this machine) to
// the recorder's clock.
func (r *Recorder) At(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Call records the start of an operation by client and returns its id for
// [Recorder.Return] or [Recorder.Unknown].
func (r *Recorder) Call(client int, input any) int {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: input, Call: now, Return: -1})
	return len(r.ops) - 1
}

// Return records the outcome of operation id.
func (r *Recorder) Return(id int, output any) {
	now := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops[id].Output = output
	r.ops[id].Return = now
}

// Unknown records that operation id's outcome is unknown (a timeout): its
// output is output and it may have taken effect at any time up to the end of
// the history.
func (r *Recorder) Unknown(id int, output any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops[id].Output = output
	r.unknown[id] = true
}

// Add records a complete operation whose times were measured elsewhere, on
// the recorder's clock.
func (r *Recorder) Add(client int, input, output any, call, ret int64, unknown bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: input, Output: output, Call: call, Return: ret})
	if unknown {
		r.unknown[len(r.ops)-1] = true
	}
}

// Note records a fault (nemesis event) from start to end, shown in
// history.html.
func (r *Recorder) Note(desc string, start, end int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, porcupine.Annotation{Tag: "nemesis", Description: desc, Start: start, End: end, BackgroundColor: "#fdd"})
}

// Operations returns the history: operations still pending or of unknown
// outcome get a return time after every other event, as porcupine wants.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last int64
	for _, op := range r.ops {
		last = max(last, op.Call, op.Return)
	}
	out := make([]porcupine.Operation, 0, len(r.ops))
	for i, op := range r.ops {
		if op.Return < 0 || r.unknown[i] {
			op.Return = last + 1 + int64(i)
		}
		out = append(out, op)
	}
	return out
}

// Len returns the number of operations recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Check runs porcupine on the history with model and returns its verdict.
// If the verdict is not want, the test fails and history.html and ops.jsonl
// are written to the test's artifacts (see [ArtifactDir]). A check that runs
// out of time gives porcupine.Unknown, which fails a test that wants Ok.
func (r *Recorder) Check(tb testing.TB, model porcupine.Model, want porcupine.CheckResult, timeout time.Duration) porcupine.CheckResult {
	tb.Helper()
	ops := r.Operations()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	if res != want {
		tb.Errorf("porcupine: %d operations are %s, want %s", len(ops), res, want)
		r.mu.Lock()
		info.AddAnnotations(r.notes)
		r.mu.Unlock()
		dir := ArtifactDir(tb)
		if err := porcupine.VisualizePath(model, info, filepath.Join(dir, "history.html")); err != nil {
			tb.Logf("history.html: %v", err)
		}
		SaveJSONL(tb, "ops.jsonl", ops)
	}
	return res
}

// ArtifactDir returns where a test's artifacts go: $ARTIFACTS/<test name>
// when ARTIFACTS is set, or else the test's own artifact directory (kept
// with go test -artifacts).
func ArtifactDir(tb testing.TB) string {
	tb.Helper()
	if base := os.Getenv("ARTIFACTS"); base != "" {
		dir := filepath.Join(base, strings.ReplaceAll(tb.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir
		}
	}
	return tb.ArtifactDir()
}

// SaveJSONL writes items, one JSON value a line, to name in the test's
// artifact directory, and logs where.
func SaveJSONL[T any](tb testing.TB, name string, items []T) {
	tb.Helper()
	path := filepath.Join(ArtifactDir(tb), name)
	f, err := os.Create(path)
	if err != nil {
		tb.Logf("artifact %s: %v", name, err)
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, it := range items {
		enc.Encode(it)
	}
	if err := w.Flush(); err != nil {
		tb.Logf("artifact %s: %v", name, err)
		return
	}
	tb.Logf("artifact: %s", path)
}

// Rand returns a random source for one scenario, seeded from the CHAOS_SEED
// environment variable if set and from the clock otherwise. The seed is
// logged, so a failing run can be replayed with CHAOS_SEED=<seed>.
func Rand(tb testing.TB) *rand.Rand {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	tb.Logf("CHAOS_SEED=%d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Uniform returns a duration drawn uniformly from [lo, hi].
func Uniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}
