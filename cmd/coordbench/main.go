// Coordbench measures coordkit's primitives against etcd's own code on the
// same etcd server in the same run, and prints one line per workload with
// both rates, latencies and their ratio.
//
// Usage:
//
//	coordbench [-endpoints URLS] [-duration D] [-run REGEXP] [-long]
//
// With no -endpoints it starts an embedded single-member etcd (no fsync),
// so figures show the client-side algorithm and round trips rather than
// disk speed. Each side of a workload runs for -duration (default 2s).
// Ratios above 1 mean coordkit is faster.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	if os.Getenv(serveEnv) != "" {
		os.Exit(serve(os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a workload runs against.
type env struct {
	cfg      etcdclient.Config // how to build clients
	duration time.Duration
	prefix   string // unique per workload side

	mu      sync.Mutex // guards clients
	clients []*clientv3.Client
}

// client returns a new client, closed when the workload side ends.
func (e *env) client() (*clientv3.Client, error) {
	cli, err := e.cfg.New(context.Background())
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clients = append(e.clients, cli)
	e.mu.Unlock()
	return cli, nil
}

func (e *env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.clients {
		c.Close()
	}
	e.clients = nil
}

// result is what one side of a workload measured.
type result struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration // per operation, or per handoff
	extra   map[string]float64
}

// rounds is how many times each side of a workload runs, alternating; the
// side that goes first changes every round.
const rounds = 6

// add merges another round's result. Extras are per-op averages, so they
// are weighted by ops.
func (r *result) add(o result) {
	for k, v := range o.extra {
		if r.extra == nil {
			r.extra = map[string]float64{}
		}
		r.extra[k] = (r.extra[k]*float64(r.ops) + v*float64(o.ops)) / float64(max(1, r.ops+o.ops))
	}
	r.ops += o.ops
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

type side func(ctx context.Context, e *env) (result, error)

// workload is one line of output: coordkit's side and etcd's (or the
// round-trip floor's), run one after the other on the same server.
type workload struct {
	name   string
	unit   string // what ops counts: "locks", "commits", ...
	ours   side
	theirs side
	vs     string // what theirs is: "etcd Mutex", "floor", ...
	rounds int    // rounds per side; 0 means the default, rounds
	long   bool   // takes minutes: runs only with -long
}

func workloads() []workload {
	return slices.Concat(mutexWorkloads(), stmWorkloads(), electionWorkloads(), queueWorkloads(), rwmutexWorkloads(), semaphoreWorkloads(), configWorkloads(), gatewayWorkloads(), registryWorkloads(), burstWorkloads())
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coordbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := etcdclient.Default()
	cfg.Endpoints = nil // none given: start an embedded etcd
	if err := cfg.LoadEnv("ETCDCTL"); err != nil {
		fmt.Fprintf(stderr, "coordbench: %v\n", err)
		return 2
	}
	cfg.AddFlags(fs) // etcdctl's flags: -endpoints (default: an embedded etcd), -cacert, -user, ...
	duration := fs.Duration("duration", 2*time.Second, "how long each side of each workload runs")
	only := fs.String("run", "", "run only workloads whose name matches this regular expression")
	server := fs.String("server", "inprocess", "without -endpoints, where the embedded etcd runs: `inprocess` (in this process, sharing its Go runtime with the clients) or process (in a child process)")
	members := fs.Int("members", 1, "with -server inprocess, how many members the embedded etcd cluster has (3 measures what a quorum costs)")
	long := fs.Bool("long", false, "also run the workloads that take minutes (mutex/burst-10000, mutex/line-10000)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (client and embedded server) to `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintf(stderr, "coordbench: -run: %v\n", err)
		return 2
	}
	if *duration <= 0 {
		fmt.Fprintln(stderr, "coordbench: -duration must be positive")
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "coordbench: -cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "coordbench: -cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	switch {
	case len(cfg.Endpoints) > 0:
		fmt.Fprintf(stdout, "etcd at %s\n", strings.Join(cfg.Endpoints, ","))
	case *members < 1 || (*members > 1 && *server != "inprocess"):
		fmt.Fprintf(stderr, "coordbench: -members %d: want 1 or more, and more than 1 only with -server inprocess\n", *members)
		return 2
	case *server == "inprocess":
		srv, err := etcdtest.StartCluster(ctx, *members, "")
		if err != nil {
			fmt.Fprintf(stderr, "coordbench: start embedded etcd: %v\n", err)
			return 1
		}
		defer srv.Close()
		cfg = etcdclient.Default()
		cfg.Endpoints = srv.Endpoints()
		fmt.Fprintf(stdout, "embedded etcd at %s (%d member(s), in this process)\n", strings.Join(cfg.Endpoints, ","), *members)
	case *server == "process":
		ep, stop, err := startChild(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "coordbench: start etcd in a child process: %v\n", err)
			return 1
		}
		defer stop()
		cfg = etcdclient.Default()
		cfg.Endpoints = []string{ep}
		fmt.Fprintf(stdout, "embedded etcd at %s (in a child process)\n", ep)
	default:
		fmt.Fprintf(stderr, "coordbench: -server %q: want inprocess or process\n", *server)
		return 2
	}
	fmt.Fprintf(stdout, "%-28s %12s %9s %9s   %12s %9s %9s   %6s  %s\n",
		"workload", "coordkit/s", "p50", "p99", "other/s", "p50", "p99", "ratio", "other")
	failed := false
	for i, w := range workloads() {
		if !re.MatchString(w.name) || w.long && !*long {
			continue
		}
		n := rounds
		if w.rounds > 0 {
			n = w.rounds
		}
		// The sides alternate in short rounds, so that drift in the machine's
		// load (GC, the other core's work) falls on both alike, and take
		// turns going first, so that neither always runs on a store the
		// other has just grown.
		var res [2]result
		for round := 0; round < n && !failed; round++ {
			for _, j := range [][]int{{0, 1}, {1, 0}}[round%2] {
				s := []side{w.ours, w.theirs}[j]
				e := &env{cfg: cfg, duration: *duration / rounds, prefix: fmt.Sprintf("/coordbench/%d-%d-%d/", i, round, j)}
				r, err := s(ctx, e)
				e.close()
				if err != nil {
					fmt.Fprintf(stderr, "coordbench: %s: %v\n", w.name, err)
					failed = true
					break
				}
				res[j].add(r)
			}
		}
		if failed {
			break
		}
		fmt.Fprintf(stdout, "%-28s %12.1f %9s %9s   %12.1f %9s %9s   %5.2fx  %s%s\n",
			w.name, res[0].rate(), round(res[0].pct(.5)), round(res[0].pct(.99)),
			res[1].rate(), round(res[1].pct(.5)), round(res[1].pct(.99)),
			res[0].rate()/res[1].rate(), w.vs, extras(res))
	}
	if failed {
		return 1
	}
	return 0
}

func round(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

func extras(res [2]result) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(res[0].extra)) {
		fmt.Fprintf(&b, "  %s %.2f vs %.2f", k, res[0].extra[k], res[1].extra[k])
	}
	return b.String()
}
