package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mode says whether a [FenceStore] rejects stale tokens.
type Mode int

const (
	// Enforcing accepts an operation iff its token is at least the highest
	// token seen so far, and then raises that highest token: the fenced
	// resource of Kleppmann's argument. Reads and begins are fenced too, so
	// a holder that read with a newer token shuts out an older one's write.
	Enforcing Mode = iota
	// Recording accepts everything and only logs it, so that overlapping
	// critical sections can be found in the log afterwards.
	Recording
)

func (m Mode) String() string {
	if m == Enforcing {
		return "enforcing"
	}
	return "recording"
}

// Operation kinds in a [FenceStore]'s log.
const (
	// KindBegin marks that a client started a critical section with a token
	// (right after its Lock returned).
	KindBegin = "begin"
	// KindRead reads the set.
	KindRead = "read"
	// KindWrite replaces the set (the client read, added, and writes back).
	KindWrite = "write"
	// KindEnd marks that a client learnt its hold had ended. It is never
	// fenced.
	KindEnd = "end"
)

// Event is one operation as the store saw it, in the order the store
// applied them.
type Event struct {
	Seq      int           `json:"seq"`
	Kind     string        `json:"kind"`
	Tok      int64         `json:"tok"`
	Client   int           `json:"client"`
	At       time.Duration `json:"at"` // since the store started, on its monotonic clock
	Accepted bool          `json:"accepted"`
	Max      int64         `json:"max"` // highest token seen before this operation
	Set      []int         `json:"set,omitempty"`
}

// FenceStore is a protected resource: a set of integers behind an HTTP
// server on 127.0.0.1, written with fencing tokens. Its methods are safe for
// concurrent use.
type FenceStore struct {
	mode  Mode
	start time.Time
	srv   *http.Server
	url   string
	done  chan struct{}

	mu  sync.Mutex // guards max, set, log
	max int64
	set []int
	log []Event
}

// NewFenceStore starts a store in the given mode, stopped when the test
// ends. If the test fails, the store's log is written to the test's
// artifacts as fence-<mode>.jsonl.
func NewFenceStore(tb testing.TB, mode Mode) *FenceStore {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fence store: %v", err)
	}
	s := &FenceStore{mode: mode, start: time.Now(), url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		s.Close()
		if tb.Failed() {
			SaveJSONL(tb, "fence-"+mode.String()+".jsonl", s.Log())
		}
	})
	return s
}

// URL returns the store's base URL, for [NewFenceClient].
func (s *FenceStore) URL() string { return s.url }

// Now returns the store's clock, on which [Event.At] is measured.
func (s *FenceStore) Now() time.Duration { return time.Since(s.start) }

// Mode returns the store's mode.
func (s *FenceStore) Mode() Mode { return s.mode }

// Close stops the server and waits for it. It is idempotent.
func (s *FenceStore) Close() {
	s.srv.Close()
	<-s.done
}

// Log returns a copy of every operation so far, in the order applied.
func (s *FenceStore) Log() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// Set returns the set's current contents, sorted.
func (s *FenceStore) Set() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.set)
}

// Apply performs one operation as if it had come over HTTP, and reports
// whether it was accepted and the set after it.
func (s *FenceStore) Apply(kind string, tok int64, client int, set []int) (bool, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := Event{Seq: len(s.log), Kind: kind, Tok: tok, Client: client, At: time.Since(s.start), Max: s.max, Accepted: true}
	fenced := kind != KindEnd
	if fenced && s.mode == Enforcing && tok < s.max {
		ev.Accepted = false
	}
	if ev.Accepted && fenced {
		s.max = max(s.max, tok)
		if kind == KindWrite {
			s.set = slices.Clone(set)
			slices.Sort(s.set)
		}
	}
	switch kind {
	case KindWrite:
		ev.Set = slices.Clone(set)
	case KindRead:
		ev.Set = slices.Clone(s.set)
	}
	s.log = append(s.log, ev)
	return ev.Accepted, slices.Clone(s.set)
}

func (s *FenceStore) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := strings.TrimPrefix(r.URL.Path, "/")
	tok, err1 := strconv.ParseInt(q.Get("tok"), 10, 64)
	client, err2 := strconv.Atoi(q.Get("client"))
	body, err3 := io.ReadAll(r.Body)
	set, err4 := parseSet(string(body))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch kind {
	case KindBegin, KindRead, KindWrite, KindEnd:
	default:
		http.Error(w, "unknown operation "+kind, http.StatusNotFound)
		return
	}
	ok, cur := s.Apply(kind, tok, client, set)
	if !ok {
		http.Error(w, "stale", http.StatusConflict)
		return
	}
	io.WriteString(w, formatSet(cur))
}

func formatSet(set []int) string {
	parts := make([]string, len(set))
	for i, x := range set {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

func parseSet(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for p := range strings.SplitSeq(s, ",") {
		x, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("bad set element %q", p)
		}
		out = append(out, x)
	}
	return out, nil
}

// ErrStale is returned by a [FenceClient] when an enforcing store rejected
// the operation's token.
var ErrStale = errors.New("chaos: token rejected as stale")

// FenceClient talks to a [FenceStore] as one client. It is safe for
// concurrent use; Close it when done.
type FenceClient struct {
	url    string
	id     int
	client *http.Client
}

// NewFenceClient returns a client of the store at url, identified as id in
// the store's log.
func NewFenceClient(url string, id int) *FenceClient {
	return &FenceClient{url: url, id: id, client: &http.Client{Transport: &http.Transport{}}}
}

// Close closes the client's idle connections.
func (c *FenceClient) Close() { c.client.CloseIdleConnections() }

// Begin records that a critical section with tok started.
func (c *FenceClient) Begin(ctx context.Context, tok int64) error {
	_, err := c.do(ctx, KindBegin, tok, nil)
	return err
}

// Read returns the set, fenced by tok.
func (c *FenceClient) Read(ctx context.Context, tok int64) ([]int, error) {
	return c.do(ctx, KindRead, tok, nil)
}

// Write replaces the set, fenced by tok. It returns [ErrStale] if the store
// rejected it.
func (c *FenceClient) Write(ctx context.Context, tok int64, set []int) error {
	_, err := c.do(ctx, KindWrite, tok, set)
	return err
}

// End records that the hold with tok is known to have ended.
func (c *FenceClient) End(ctx context.Context, tok int64) error {
	_, err := c.do(ctx, KindEnd, tok, nil)
	return err
}

func (c *FenceClient) do(ctx context.Context, kind string, tok int64, set []int) ([]int, error) {
	u := fmt.Sprintf("%s/%s?tok=%d&client=%d", c.url, kind, tok, c.id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(formatSet(set)))
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chaos: fence %s: %w", kind, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("chaos: fence %s: %w", kind, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return parseSet(string(body))
	case http.StatusConflict:
		return nil, fmt.Errorf("chaos: fence %s with token %d: %w", kind, tok, ErrStale)
	}
	return nil, fmt.Errorf("chaos: fence %s: %s: %s", kind, resp.Status, body)
}
