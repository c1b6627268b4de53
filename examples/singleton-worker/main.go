// Singleton-worker is a service of which every replica runs, but only one
// does the singleton work (a scheduler, a reconciler) at a time, using
// coordkit's election supervisor.
//
// As a real service, start it on several hosts (or twice in two shells)
// against the same etcd, kill the leader, and watch another take over:
//
//	go run ./examples/singleton-worker -endpoints 127.0.0.1:2379 -id a
//	go run ./examples/singleton-worker -endpoints 127.0.0.1:2379 -id b
//
// With no -id it demonstrates the same in one process, on an embedded etcd
// unless -endpoints is given: replicas a and b start, a leads, a "crashes"
// (its client vanishes without resigning), b takes over once a's lease
// expires, then b is stopped cleanly and hands over to a restarted a at
// once. It exits non-zero if the takeovers did not happen as described.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/examples/internal/demo"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const name = "/examples/singleton-worker"

func main() {
	// TERM (a service manager's stop, a rolling restart) resigns just as
	// Ctrl-C does, so the next replica leads at once rather than after a TTL.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "singleton-worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("singleton-worker", flag.ContinueOnError)
	fs.SetOutput(out)
	id := fs.String("id", "", "this replica's name; without it, run the two-replica demonstration")
	eps := fs.String("endpoints", "", "comma-separated etcd endpoints (default: start an embedded etcd)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var dargs []string
	if *eps != "" {
		dargs = []string{"-endpoints", *eps}
	}
	env, err := demo.Setup(ctx, "singleton-worker", dargs, out)
	if err != nil {
		return err
	}
	defer env.Close()
	if *id != "" {
		cli, err := env.Client()
		if err != nil {
			return err
		}
		err = replica(ctx, cli, *id, 10*time.Second, out)
		if ctx.Err() != nil {
			return nil // stopped with Ctrl-C or TERM: resigned, a successor leads
		}
		return err
	}
	return demonstrate(ctx, env)
}

// replica runs the supervisor until ctx ends: it does the work whenever it
// leads, and stops the moment it does not.
func replica(ctx context.Context, cli *clientv3.Client, id string, ttl time.Duration, out io.Writer) error {
	return election.Run(ctx, cli, name, func(lctx context.Context, e *election.Election) error {
		fmt.Fprintf(out, "[%s] leading with token %d: doing the singleton work\n", id, e.Token())
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				fmt.Fprintf(out, "[%s] stopped leading (%v)\n", id, context.Cause(lctx))
				return nil
			case <-tick.C:
				// One unit of work, fenced: it commits only while we lead.
				resp, err := e.Txn(lctx).Then(clientv3.OpPut(name+"-heartbeat", fmt.Sprintf("%s %d", id, e.Token()))).Commit()
				if err == nil && !resp.Succeeded {
					fmt.Fprintf(out, "[%s] a write was refused: not leader any more\n", id)
				}
			}
		}
	}, election.WithTTL(ttl), election.WithValue(id), election.WithOnNewLeader(func(li election.LeaderInfo) {
		if li.Key == "" {
			fmt.Fprintf(out, "[%s] sees: nobody leads\n", id)
			return
		}
		fmt.Fprintf(out, "[%s] sees: %s leads\n", id, li.Value)
	}))
}

// lockedWriter serialises the replicas' lines.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func demonstrate(ctx context.Context, env *demo.Env) error {
	out := &lockedWriter{w: env.Out}
	ttl := 2 * time.Second
	leader := func() (string, error) {
		cli, err := env.Client()
		if err != nil {
			return "", err
		}
		resp, err := cli.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
		if err != nil || len(resp.Kvs) == 0 {
			return "", err
		}
		return string(resp.Kvs[0].Value), nil
	}
	waitLeader := func(want string) error {
		deadline := time.Now().Add(3*ttl + 5*time.Second)
		for time.Now().Before(deadline) {
			if l, err := leader(); err != nil {
				return err
			} else if l == want {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("%s did not become leader", want)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	start := func(id string) (context.CancelFunc, *clientv3.Client, error) {
		cli, err := env.Config.New(ctx)
		if err != nil {
			return nil, nil, err
		}
		rctx, cancel := context.WithCancel(ctx)
		wg.Go(func() {
			defer cli.Close()
			if err := replica(rctx, cli, id, ttl, out); err != nil && rctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, election.ErrClosed) {
				errs <- fmt.Errorf("replica %s: %w", id, err)
			}
		})
		return cancel, cli, nil
	}

	stopA, cliA, err := start("a")
	if err != nil {
		return err
	}
	if err := waitLeader("a"); err != nil {
		return err
	}
	stopB, _, err := start("b")
	if err != nil {
		return err
	}
	defer stopB()
	time.Sleep(500 * time.Millisecond)
	fmt.Fprintln(out, "\n*** a crashes: its connection to etcd vanishes, it does not resign ***")
	cliA.Close()
	crashed := time.Now()
	if err := waitLeader("b"); err != nil {
		return err
	}
	fmt.Fprintf(out, "*** b took over %v after the crash (lease TTL %v) ***\n\n", time.Since(crashed).Round(100*time.Millisecond), ttl)
	stopA()

	stopA2, _, err := start("a")
	if err != nil {
		return err
	}
	defer stopA2()
	time.Sleep(500 * time.Millisecond)
	fmt.Fprintln(out, "\n*** b is stopped cleanly (a rolling restart): it resigns ***")
	stopB()
	stopped := time.Now()
	if err := waitLeader("a"); err != nil {
		return err
	}
	fmt.Fprintf(out, "*** a took over %v after b was stopped: no TTL to wait for ***\n\n", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	stopA2()
	wg.Wait()
	close(errs)
	var all []string
	for err := range errs {
		all = append(all, err.Error())
	}
	if len(all) > 0 {
		return errors.New(strings.Join(all, "; "))
	}
	return nil
}
