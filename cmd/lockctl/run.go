package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/mutex"
	"github.com/coordkit/coordkit/semaphore"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// holdOpts are the flags shared by run and elect.
type holdOpts struct {
	ttl       int
	wait      time.Duration
	waitSet   bool
	killGrace time.Duration
	conflict  int
	shell     bool
	quiet     bool
	passCreds bool
	value     string
}

func (o *holdOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&o.ttl, "ttl", 10, "session TTL in seconds: how long the hold outlives a crashed lockctl")
	f.DurationVar(&o.wait, "wait", 0, "give up acquiring after this long (0: try once, like flock -n; default: wait forever)")
	f.DurationVar(&o.killGrace, "kill-grace", 10*time.Second, "after the hold is lost, wait this long after TERM before KILL")
	f.IntVar(&o.conflict, "conflict-exit-code", ExitConflict, "exit code when not acquired within --wait")
	f.BoolVar(&o.shell, "shell", false, "run the command through /bin/sh -c (give it as one argument)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print nothing when not acquired within --wait (the exit code still says so), as flock -n does")
	f.BoolVar(&o.passCreds, "pass-credentials", false, "pass lockctl's credentials (LOCKCTL_USER, LOCKCTL_PASSWORD, LOCKCTL_PASSWORD_FILE and the ETCDCTL_ ones) on to the command")
	f.StringVar(&o.value, "value", "", "what 'lockctl status' and observers see as the holder (default: host, pid and program name)")
}

// nameBeforeDash is the usage error for "lockctl run -- CMD": cobra would
// otherwise take CMD's first word as NAME.
func nameBeforeDash(cmd *cobra.Command, args []string) error {
	if cmd.ArgsLenAtDash() != 0 {
		return nil
	}
	return usagef("no NAME: it goes before --, e.g. lockctl %s NAME -- %s", cmd.Name(), strings.Join(args, " "))
}

func (o *holdOpts) validate(cmd *cobra.Command, argv []string) error {
	o.waitSet = cmd.Flags().Changed("wait")
	switch {
	case len(argv) == 0:
		return usagef("no command to run: put it after --, e.g. lockctl %s NAME -- backup.sh", cmd.Name())
	case o.ttl < 1:
		return usagef("--ttl %d: the session TTL must be at least 1 second", o.ttl)
	case o.wait < 0:
		return usagef("--wait %v: must be 0 (try once) or positive", o.wait)
	case o.killGrace < 0:
		return usagef("--kill-grace %v: must not be negative", o.killGrace)
	case o.conflict < 0 || o.conflict > 255:
		return usagef("--conflict-exit-code %d: must be between 0 and 255", o.conflict)
	case o.shell && len(argv) != 1:
		return usagef("--shell takes the command as one argument, e.g. --shell -- 'backup.sh | gzip'")
	}
	return nil
}

// acquireCtx bounds acquisition by --wait.
func (o *holdOpts) acquireCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.waitSet && o.wait > 0 {
		return context.WithTimeout(ctx, o.wait)
	}
	return context.WithCancel(ctx)
}

// holderValue is --value, or the JSON of a holderInfo for argv.
func (o *holdOpts) holderValue(argv []string) string {
	if o.value != "" {
		return o.value
	}
	prog := "sh"
	if !o.shell {
		prog = filepath.Base(argv[0])
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(holderInfo{Host: host, PID: os.Getpid(), Program: prog, Since: time.Now().UTC().Format(time.RFC3339)})
	return string(b)
}

// hold is what run and elect hold while the child runs: a *mutex.Mutex,
// *semaphore.Semaphore or *election.Election. It is released by revoking
// the session's lease.
type hold interface {
	Done() <-chan struct{}
	Err() error
	Token() int64
	Key() string
}

func newRunCmd(cfg *config) *cobra.Command {
	o := &holdOpts{}
	var limit int
	cmd := &cobra.Command{
		Use:   "run NAME [flags] -- CMD [ARGS...]",
		Short: "Run a command while holding the lock NAME (or one of --limit slots)",
		Long: `Run CMD while holding the lock NAME. Only one lockctl run (or coordkit mutex, etcd
concurrency.Mutex or etcdctl lock) holds NAME at a time, across all hosts.

By default it waits for the lock as long as it takes; --wait 0 tries once and exits with
--conflict-exit-code (75) if the lock is taken, as flock -n does. A crontab line:

  */5 * * * * lockctl run --wait 0 jobs/report -- /usr/local/bin/report.sh

With --limit N, NAME is a semaphore with N slots: up to N commands run at once, first come
first served. Every caller must give the same N; one that does not gets an error (exit 64)
and nothing runs on a disagreement.

The command gets LOCKCTL_NAME, LOCKCTL_KEY, LOCKCTL_TOKEN, LOCKCTL_LEASE, ETCD_LOCK_KEY and
ETCD_LOCK_REV. LOCKCTL_TOKEN is a fencing token that grows with every new holder: pass it
with writes to shared storage and reject writes with a lower token than one already seen.
It does not get lockctl's credentials (LOCKCTL_USER, LOCKCTL_PASSWORD,
LOCKCTL_PASSWORD_FILE and their ETCDCTL_ names) unless --pass-credentials is given.

While CMD runs, INT, TERM, HUP, QUIT, USR1 and USR2 sent to lockctl are forwarded once
to CMD's process group and lockctl exits with CMD's code; only while lockctl is still
waiting do they end the wait (exit 130). From a terminal, CMD runs as the foreground job:
it can read the terminal and gets Ctrl-C itself. If lockctl is killed (kill -9), CMD and
everything it started are killed at once.

` + exitCodesHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nameBeforeDash(cmd, args); err != nil {
				return err
			}
			name, argv := args[0], args[1:]
			if cmd.ArgsLenAtDash() != 1 && len(argv) > 0 {
				return usagef("put the command after --, e.g. lockctl run %s -- %s", name, strings.Join(argv, " "))
			}
			if err := o.validate(cmd, argv); err != nil {
				return err
			}
			key, err := cfg.name(name)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("limit") && limit < 1 {
				return usagef("--limit %d: a semaphore needs at least 1 slot", limit)
			}
			if limit > 0 {
				return holdAndRun(cmd, cfg, o, key, argv, func(ctx context.Context, s *concurrency.Session) (hold, error) {
					m := semaphore.New(s, key, limit, semaphore.WithValue(o.holderValue(argv)))
					var err error
					if o.waitSet && o.wait == 0 {
						err = m.TryAcquire(ctx, 1)
					} else {
						err = m.Acquire(ctx, 1)
					}
					switch {
					case errors.Is(err, semaphore.ErrNoPermits):
						err = errNotAcquired
					case errors.Is(err, semaphore.ErrLimitMismatch):
						err = usagef("--limit %d: %w", limit, err)
					}
					return m, err
				})
			}
			return holdAndRun(cmd, cfg, o, key, argv, func(ctx context.Context, s *concurrency.Session) (hold, error) {
				m := mutex.New(s, key, mutex.WithValue(o.holderValue(argv)))
				var err error
				if o.waitSet && o.wait == 0 {
					err = m.TryLock(ctx)
				} else {
					err = m.Lock(ctx)
				}
				if errors.Is(err, mutex.ErrLocked) {
					err = errNotAcquired
				}
				return m, err
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "make NAME a semaphore with this many slots (every caller must agree)")
	return cmd
}

var errNotAcquired = errors.New("not acquired: held by another")

// holdAndRun connects, acquires with acquire, runs argv under the hold and
// returns the error that carries lockctl's exit code.
//
// The client, the session and the hold live on a context that nothing
// cancels: a signal while the command runs belongs to the command, and
// the lease is revoked on the way out. Only the grant and the wait to
// acquire end early when ctx is done (a signal while waiting).
func holdAndRun(cmd *cobra.Command, cfg *config, o *holdOpts, name string, argv []string,
	acquire func(context.Context, *concurrency.Session) (hold, error)) error {
	ctx := cmd.Context()
	// The guard starts now, to be ready by the time the hold is acquired;
	// if it cannot start, runChild tries again and reports why.
	g, _ := startGuard(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
	defer func() {
		if g != nil {
			g.discard()
		}
	}()
	// No request yet: the lease grant is the first, and tells whether etcd
	// can be reached (newSession). ctx bounds only the client's start: the
	// client lives until Close.
	cli, err := cfg.newClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	s, err := newSession(ctx, cfg, cli, o.ttl)
	if err != nil {
		if ctx.Err() != nil {
			return withCode(ExitInterrupted, fmt.Errorf("%s: interrupted while waiting", name))
		}
		return err
	}
	// Revoking the lease at exit frees the hold at once for the next run.
	defer closeSession(cfg, s)

	actx, cancel := o.acquireCtx(ctx)
	h, err := acquire(actx, s)
	cancel()
	switch {
	case errors.Is(err, errNotAcquired), err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		if o.quiet {
			return withCode(o.conflict, nil)
		}
		return withCode(o.conflict, fmt.Errorf("%s: not acquired within --wait %v: held by another", name, o.wait))
	case err != nil && ctx.Err() != nil:
		return withCode(ExitInterrupted, fmt.Errorf("%s: interrupted while waiting", name))
	case codeOf(err) == ExitUsage:
		return err
	case errs.Refused(err):
		return refused(cfg, "write", keyPrefix(name), err)
	case err != nil:
		return withCode(ExitUnavailable, fmt.Errorf("%s: acquire: %w", name, err))
	}
	guarded := g
	g = nil // runChild owns it now
	res := runChild(ctx, cmd, guarded, o, argv, childEnv(name, h, fmt.Sprintf("%x", int64(s.Lease())), o.passCreds), h.Done())
	// No separate release: revoking the session's lease on the way out
	// (closeSession) deletes the key, one round trip instead of two.
	switch {
	case res.interrupted:
		return withCode(ExitInterrupted, fmt.Errorf("%s: interrupted before the command started", name))
	case res.lost:
		return withCode(ExitLost, fmt.Errorf("%s: hold lost while the command ran (%w): the command was stopped", name, h.Err()))
	}
	return withCode(res.code, nil)
}

// newSession grants the lease with a timeout (NewSession's own Grant has
// none) and keeps it alive for the life of the process.
func newSession(ctx context.Context, cfg *config, cli *clientv3.Client, ttl int) (*concurrency.Session, error) {
	var lease *clientv3.LeaseGrantResponse
	err := cfg.First(ctx, "grant a lease", "", func(ctx context.Context) (err error) {
		lease, err = cli.Grant(ctx, int64(ttl))
		return err
	})
	if err != nil {
		return nil, unavailable(cfg.Endpoints, err)
	}
	s, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(ttl))
	if err != nil {
		return nil, unavailable(cfg.Endpoints, err)
	}
	return s, nil
}

func closeSession(cfg *config, s *concurrency.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.CommandTimeout)
	defer cancel()
	s.Orphan()
	s.Client().Revoke(ctx, s.Lease())
}

// credentialVars are lockctl's own credentials in its environment
// (LOCKCTL_USER and ETCDCTL_USER may be user:password): the command does
// not get them unless --pass-credentials says so.
var credentialVars = []string{"LOCKCTL_USER", "LOCKCTL_PASSWORD", "LOCKCTL_PASSWORD_FILE", "ETCDCTL_USER", "ETCDCTL_PASSWORD", "ETCDCTL_PASSWORD_FILE"}

// childEnv is the parent's environment with lockctl's variables set to
// the real values, never inherited, and without lockctl's credentials
// unless passCreds.
func childEnv(name string, h hold, lease string, passCreds bool) []string {
	set := map[string]string{
		"LOCKCTL_NAME":  name,
		"LOCKCTL_KEY":   h.Key(),
		"LOCKCTL_TOKEN": strconv.FormatInt(h.Token(), 10),
		"LOCKCTL_LEASE": lease,
		"ETCD_LOCK_KEY": h.Key(),
		"ETCD_LOCK_REV": strconv.FormatInt(h.Token(), 10),
	}
	return commandEnv(set, passCreds)
}

// commandEnv is the parent's environment with the variables in set set to
// their values, never inherited, and without lockctl's credentials unless
// passCreds.
func commandEnv(set map[string]string, passCreds bool) []string {
	drop := map[string]bool{}
	if !passCreds {
		for _, k := range credentialVars {
			drop[k] = true
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; !ours && !drop[k] {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// childResult is how a command's run under a hold ended.
type childResult struct {
	code        int  // the command's exit code, 128+N if killed by signal N
	lost        bool // the hold was lost while it ran, and it was stopped
	stopped     bool // INT or TERM was forwarded to it (or ctx was done)
	interrupted bool // it did not run: a signal came before it could start
}

// runChild runs argv under a guard in its own process group, forwards
// lockctl's signals to the group, and stops the group if lost closes
// first. It returns once the command (and its guard) exited.
//
// Signals come from the signalRouter in ctx. Without one (run called by
// a Go test), ctx being done stands for a TERM to lockctl.
//
// g is a guard started beforehand (see [guardArg]), or nil to start one.
// runChild owns it either way.
func runChild(ctx context.Context, cmd *cobra.Command, g *guard, o *holdOpts, argv []string, env []string, lost <-chan struct{}) childResult {
	if o.shell {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	if g == nil {
		var err error
		if g, err = startGuard(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: cannot run %s: %v\n", argv[0], err)
			return childResult{code: 126}
		}
	}
	sigs := make(chan os.Signal, 8)
	done := ctx.Done()
	if r := routerFrom(ctx); r != nil {
		defer r.divert(sigs)()
		done = nil // the router never cancels ctx while it diverts
		if ctx.Err() != nil {
			g.discard()
			return childResult{code: ExitInterrupted, interrupted: true}
		}
	}
	if err := g.run(argv, env, foregroundTTY(cmd.InOrStdin())); err != nil {
		g.discard()
		fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: cannot run %s: %v\n", argv[0], err)
		return childResult{code: 126}
	}
	exited := make(chan *os.ProcessState)
	go func() { exited <- g.wait() }()
	pgid := g.pgid()
	var res childResult
	var kill <-chan time.Time
	for {
		select {
		case ps := <-exited:
			res.code = exitCode(ps)
			return res
		case sig := <-sigs:
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				res.stopped = true
			}
			syscall.Kill(-pgid, sig.(syscall.Signal))
		case <-done:
			done = nil
			res.stopped = true
			syscall.Kill(-pgid, syscall.SIGTERM)
		case <-lost:
			lost = nil
			res.lost = true
			fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: hold lost: sending TERM to the command, KILL in %v\n", o.killGrace)
			syscall.Kill(-pgid, syscall.SIGTERM)
			t := time.NewTimer(o.killGrace)
			defer t.Stop()
			kill = t.C
		case <-kill:
			kill = nil
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
