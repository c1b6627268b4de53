package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/registry"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// registerOpts are register's flags.
type registerOpts struct {
	addr           string
	id             string
	meta           []string
	ttl            int
	wait           time.Duration
	healthCmd      string
	healthURL      string
	healthInterval time.Duration
	healthTimeout  time.Duration
	drainDelay     time.Duration
	quiet          bool
	passCreds      bool
}

func (o *registerOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "HOST:PORT where clients reach this instance (required)")
	f.StringVar(&o.id, "id", "", "the instance's ID, unique within SERVICE (default: --addr)")
	f.StringArrayVar(&o.meta, "meta", nil, "metadata KEY=VALUE for clients (repeatable)")
	f.IntVar(&o.ttl, "ttl", 10, "lease TTL in seconds: how long the instance stays listed after lockctl dies")
	f.DurationVar(&o.wait, "wait", 0, "give up if the first registration is not stored within this long (default: --dial-timeout + --command-timeout)")
	f.StringVar(&o.healthCmd, "health-cmd", "", "shell command whose exit 0 means healthy (run by /bin/sh -c)")
	f.StringVar(&o.healthURL, "health-url", "", "URL whose 2xx answer to GET means healthy")
	f.DurationVar(&o.healthInterval, "health-interval", 5*time.Second, "time between two health checks")
	f.DurationVar(&o.healthTimeout, "health-timeout", 5*time.Second, "a health check that takes longer fails")
	f.DurationVar(&o.drainDelay, "drain-delay", 2*time.Second, "on INT or TERM: how long the instance is listed as draining before the signal goes on to the command")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "say nothing on stderr about outages and health changes")
	f.BoolVar(&o.passCreds, "pass-credentials", false, "pass lockctl's credentials (LOCKCTL_USER, LOCKCTL_PASSWORD, LOCKCTL_PASSWORD_FILE and the ETCDCTL_ ones) on to the command and the health command")
}

// instance validates the flags and returns the instance to register as
// service (already namespaced).
func (o *registerOpts) instance(cmd *cobra.Command, service string) (registry.Instance, error) {
	in := registry.Instance{Service: strings.TrimSuffix(service, "/"), ID: o.id, Addr: o.addr}
	if o.addr == "" {
		return in, usagef("--addr is required: where clients reach this instance, e.g. --addr 10.0.0.7:8080")
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return in, usagef("--addr %q: want HOST:PORT: %w", o.addr, err)
	}
	if cmd.Flags().Changed("id") && strings.Trim(o.id, "/ ") == "" {
		return in, usagef("--id %q is empty", o.id)
	}
	for _, kv := range o.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return in, usagef("--meta %q: want KEY=VALUE", kv)
		}
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		in.Metadata[k] = v
	}
	switch {
	case o.ttl < 1:
		return in, usagef("--ttl %d: the lease TTL must be at least 1 second", o.ttl)
	case o.wait < 0:
		return in, usagef("--wait %v: must not be negative", o.wait)
	case o.healthCmd != "" && o.healthURL != "":
		return in, usagef("--health-cmd and --health-url: give one of them")
	case o.healthInterval <= 0:
		return in, usagef("--health-interval %v: must be positive", o.healthInterval)
	case o.healthTimeout <= 0:
		return in, usagef("--health-timeout %v: must be positive", o.healthTimeout)
	case o.drainDelay < 0:
		return in, usagef("--drain-delay %v: must not be negative", o.drainDelay)
	}
	if o.healthURL != "" {
		if u, err := url.Parse(o.healthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return in, usagef("--health-url %q: want an http:// or https:// URL", o.healthURL)
		}
	}
	if in.ID == "" {
		in.ID = in.Addr
	}
	return in, nil
}

func newRegisterCmd(cfg *config) *cobra.Command {
	o := &registerOpts{}
	cmd := &cobra.Command{
		Use:   "register SERVICE --addr HOST:PORT [flags] [-- CMD [ARGS...]]",
		Short: "Keep an instance of SERVICE registered while a command runs and is healthy",
		Long: `Register an instance of SERVICE at --addr, under the key SERVICE/ID on a lease kept
alive, while CMD runs; 'lockctl discover', coordkit's registry.Watch and gRPC resolver, and
etcd's own client/v3/naming resolver see it. lockctl exits with CMD's code, after
deleting the key. Without -- CMD, it keeps the registration until it gets INT or TERM
(then exits 0): for a process started otherwise, e.g. next to it under systemd.

Once registered it never gives up: if etcd cannot be reached for longer than --ttl,
or someone deletes the key, it registers again as soon as etcd takes writes, and says
so on stderr once per outage (not with -q). Only the first registration can fail:
etcd unreachable past --wait, or a key refused by etcd RBAC (exit 69; CMD is stopped
with TERM if it had started).

With --health-cmd (exit 0 is healthy) or --health-url (a 2xx answer to GET is healthy),
checked every --health-interval, the instance is registered only once the first check
passes, and is marked draining (clients stop sending it work; it stays listed, and
'discover' shows it so) while checks fail; serving again when one passes. Without a
health check it is registered before CMD starts, and serving at once.

On INT or TERM, lockctl marks the instance draining, waits --drain-delay so clients
stop sending it work, then forwards the signal to CMD's process group and waits for
CMD; a second INT or TERM cuts the wait short. Other signals (HUP, QUIT, USR1, USR2)
are forwarded at once. When CMD exits, the key is deleted. If lockctl is killed
(kill -9), CMD and everything it started are killed at once, and the instance leaves
the list when its lease expires (--ttl). From a terminal, CMD runs as the foreground
job, so a Ctrl-C there goes to CMD directly, with no draining.

CMD gets LOCKCTL_SERVICE, LOCKCTL_ID, LOCKCTL_ADDR and LOCKCTL_KEY (the instance's key),
and not lockctl's credentials unless --pass-credentials is given.

  lockctl register svc/hello --addr 10.0.0.7:8080 --meta zone=a \
      --health-url http://127.0.0.1:8080/healthz -- ./hello --port 8080

  [Service]
  ExecStart=/usr/local/bin/lockctl register svc/hello --addr 10.0.0.7:8080 \
      --health-url http://127.0.0.1:8080/healthz -- /usr/local/bin/hello
  KillMode=mixed
  TimeoutStopSec=30

` + exitCodesHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nameBeforeDash(cmd, args); err != nil {
				return err
			}
			name, argv := args[0], args[1:]
			if cmd.ArgsLenAtDash() != 1 && len(argv) > 0 {
				return usagef("put the command after --, e.g. lockctl register %s --addr HOST:PORT -- %s", name, strings.Join(argv, " "))
			}
			service, err := cfg.name(name)
			if err != nil {
				return err
			}
			inst, err := o.instance(cmd, service)
			if err != nil {
				return err
			}
			r := &registrar{cmd: cmd, cfg: cfg, o: o, inst: inst}
			return r.main(argv)
		},
	}
	o.flags(cmd)
	return cmd
}

// registrar is one run of lockctl register.
type registrar struct {
	cmd  *cobra.Command
	cfg  *config
	o    *registerOpts
	inst registry.Instance
	cli  *clientv3.Client
}

// main connects, registers (at once, or after the first passing health
// check) and supervises argv, if any, until it exits or lockctl is
// stopped. The client and the registration live on contexts that nothing
// cancels: a signal while the command runs belongs to the command.
func (r *registrar) main(argv []string) error {
	ctx := r.cmd.Context()
	var g *guard
	if len(argv) > 0 {
		// Started now, so its start overlaps the round trips to etcd.
		g, _ = startGuard(r.cmd.InOrStdin(), r.cmd.OutOrStdout(), r.cmd.ErrOrStderr())
		defer func() {
			if g != nil {
				g.discard()
			}
		}()
	}
	cli, err := r.cfg.connect(ctx, keyPrefix(r.inst.Service))
	if err != nil {
		return err
	}
	defer cli.Close()
	r.cli = cli
	var reg *registry.Registration
	if r.o.healthCmd == "" && r.o.healthURL == "" {
		if reg, err = r.first(ctx); err != nil {
			return err
		}
	}
	if len(argv) > 0 && g == nil {
		if g, err = startGuard(r.cmd.InOrStdin(), r.cmd.OutOrStdout(), r.cmd.ErrOrStderr()); err != nil {
			r.deregister(reg)
			return withCode(126, fmt.Errorf("cannot run %s: %w", argv[0], err))
		}
	}
	sv := &supervision{r: r, reg: reg}
	guarded := g
	g = nil // the supervision owns it now
	return sv.run(ctx, guarded, argv)
}

// first stores the first registration, within --wait.
func (r *registrar) first(ctx context.Context) (*registry.Registration, error) {
	wait := r.o.wait
	if wait == 0 {
		wait = r.cfg.DialTimeout + r.cfg.CommandTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	reg, err := registry.Register(wctx, r.cli, r.inst, registry.WithTTL(r.o.ttl))
	key := r.inst.Key()
	switch {
	case err == nil:
		return reg, nil
	case ctx.Err() != nil:
		return nil, withCode(ExitInterrupted, fmt.Errorf("%s: interrupted while registering", key))
	case errs.Refused(err):
		return nil, refused(r.cfg, "write", key, err)
	case wctx.Err() != nil:
		return nil, withCode(ExitUnavailable, fmt.Errorf("%s: etcd at %s did not take the registration within --wait %v",
			key, strings.Join(r.cfg.Endpoints, ","), wait))
	}
	return nil, unavailable(r.cfg.Endpoints, err)
}

// deregister deletes the key, within the command timeout. If etcd cannot
// be reached the key goes when its lease expires.
func (r *registrar) deregister(reg *registry.Registration) {
	if reg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CommandTimeout)
	defer cancel()
	if err := reg.Deregister(ctx); err != nil && !errors.Is(err, registry.ErrDeregistered) {
		fmt.Fprintf(r.cmd.ErrOrStderr(), "lockctl: %s: %v (the key goes when its lease expires, within --ttl %d s)\n", r.inst.Key(), err, r.o.ttl)
	}
}

// env is the environment of the command and of --health-cmd.
func (r *registrar) env() []string {
	return commandEnv(map[string]string{
		"LOCKCTL_SERVICE": r.inst.Service,
		"LOCKCTL_ID":      r.inst.ID,
		"LOCKCTL_ADDR":    r.inst.Addr,
		"LOCKCTL_KEY":     r.inst.Key(),
	}, r.o.passCreds)
}

// say prints a message about the registration on stderr unless -q.
func (r *registrar) say(format string, args ...any) {
	if !r.o.quiet {
		fmt.Fprintf(r.cmd.ErrOrStderr(), "lockctl: %s: %s\n", r.inst.Key(), fmt.Sprintf(format, args...))
	}
}

// firstResult is how a first registration started in the background ended.
type firstResult struct {
	reg *registry.Registration
	err error
}

// supervision is the loop of one register run: the command, the health
// checks, the signals and the registration's state.
type supervision struct {
	r   *registrar
	reg *registry.Registration // nil until the first registration is stored

	healthErr error // the last health check's result
	checked   bool  // a health check has run
	state     registry.State
	stopping  bool        // INT or TERM came: draining, then ending
	pending   os.Signal   // the signal to forward once the drain delay is over
	drain     *time.Timer // the drain delay, once started
	down      bool        // an outage was reported and the key is not back yet
	failed    error       // the first registration failed: lockctl exits with it
}

// run is the loop. It returns once the command (if any) has exited and the
// key is deleted.
func (s *supervision) run(ctx context.Context, g *guard, argv []string) error {
	r := s.r
	var wg sync.WaitGroup
	bg, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	var firstc chan firstResult // set while a first registration is under way
	defer func() {
		stopAll()
		wg.Wait()
		if firstc != nil {
			if fr := <-firstc; fr.reg != nil && s.reg == nil {
				s.reg = fr.reg // stored just as lockctl stopped: delete it too
			}
		}
		r.deregister(s.reg)
	}()

	// Signals: diverted to sigs while a command runs. Without a command,
	// or without a signalRouter (a Go test), ctx ending is the TERM.
	sigs := make(chan os.Signal, 8)
	stop := ctx.Done()
	var exited chan *os.ProcessState
	pgid := 0
	if len(argv) > 0 {
		if rt := routerFrom(ctx); rt != nil {
			defer rt.divert(sigs)()
			stop = nil
			if ctx.Err() != nil {
				g.discard()
				return withCode(ExitInterrupted, fmt.Errorf("%s: interrupted before the command started", r.inst.Key()))
			}
		}
		if err := g.run(argv, r.env(), foregroundTTY(r.cmd.InOrStdin())); err != nil {
			g.discard()
			return withCode(126, fmt.Errorf("cannot run %s: %w", argv[0], err))
		}
		exited = make(chan *os.ProcessState, 1)
		wg.Go(func() { exited <- g.wait() })
		pgid = g.pgid()
	}

	var results chan error
	if r.o.healthCmd != "" || r.o.healthURL != "" {
		h := &healthCheck{cmd: r.o.healthCmd, url: r.o.healthURL, env: r.env(), timeout: r.o.healthTimeout}
		results = make(chan error)
		wg.Go(func() { h.loop(bg, r.o.healthInterval, results) })
	}
	firstCtx, cancelFirst := context.WithCancel(bg)
	defer cancelFirst()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()

	// beginStop marks the instance draining and starts the drain delay;
	// sig goes on to the command when it is over.
	beginStop := func(sig os.Signal) {
		s.stopping = true
		cancelFirst()
		s.pending = sig
		if s.reg == nil {
			s.drain = time.NewTimer(0)
			return
		}
		start := time.Now()
		dctx, cancel := context.WithTimeout(bg, r.o.drainDelay)
		err := s.reg.SetState(dctx, registry.Draining)
		cancel()
		if err != nil && r.o.drainDelay > 0 {
			r.say("draining not stored yet (%v): going on after --drain-delay", err)
		}
		s.drain = time.NewTimer(r.o.drainDelay - time.Since(start))
	}
	var drainC <-chan time.Time
	for {
		if s.drain != nil {
			drainC = s.drain.C
		}
		select {
		case ps := <-exited:
			code := exitCode(ps)
			if s.failed != nil {
				return s.failed
			}
			return withCode(code, nil)

		case sig := <-sigs:
			term := sig == syscall.SIGINT || sig == syscall.SIGTERM
			switch {
			case term && !s.stopping && s.failed == nil:
				beginStop(sig)
				continue
			case term && s.pending != nil:
				// A second INT or TERM cuts the drain delay short.
				s.drain.Stop()
				s.drain, drainC, sig, s.pending = nil, nil, s.pending, nil
			}
			syscall.Kill(-pgid, sig.(syscall.Signal))

		case <-stop:
			stop = nil
			if !s.stopping {
				beginStop(syscall.SIGTERM)
			}

		case <-drainC:
			s.drain, drainC = nil, nil
			sig := s.pending
			s.pending = nil
			if exited == nil {
				return nil // no command: stopped
			}
			syscall.Kill(-pgid, sig.(syscall.Signal))

		case err := <-results:
			s.health(err, func() {
				if firstc != nil {
					return // under way: checks pass every interval meanwhile
				}
				ch := make(chan firstResult, 1)
				firstc = ch
				wg.Go(func() {
					reg, err := r.first(firstCtx)
					ch <- firstResult{reg, err}
				})
			})

		case fr := <-firstc:
			firstc = nil
			if fr.err != nil {
				if s.stopping {
					continue // cancelled by the stop
				}
				if exited == nil {
					return fr.err
				}
				s.failed = fr.err
				r.say("not registered: stopping the command")
				syscall.Kill(-pgid, syscall.SIGTERM)
				continue
			}
			s.reg = fr.reg
			s.state = registry.Serving
			s.health(s.healthErr, nil) // a check may have failed meanwhile

		case <-tick.C:
			s.watchOutage()
		}
	}
}

// health acts on a health check's result: a pass before the instance is
// registered starts the first registration (startFirst, when not nil, which
// starts one only if none is under way), a failure marks the instance
// draining, a pass serving.
func (s *supervision) health(err error, startFirst func()) {
	r := s.r
	changed := !s.checked || (err == nil) != (s.healthErr == nil)
	s.checked, s.healthErr = true, err
	if s.stopping || s.failed != nil {
		return
	}
	if s.reg == nil {
		switch {
		case err == nil && startFirst != nil:
			startFirst()
		case err != nil && changed:
			r.say("not registered yet: health check failed: %v", err)
		}
		return
	}
	want := registry.Serving
	if err != nil {
		want = registry.Draining
	}
	if want == s.state {
		return
	}
	s.state = want
	if err != nil {
		r.say("health check failed: %v: draining until it passes", err)
	} else {
		r.say("health check passes again: serving")
	}
	// Stored in the background: the registration keeps the new state and
	// stores it as soon as etcd can be reached.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	s.reg.SetState(done, want)
}

// watchOutage says once per outage that the key is not stored, and when it
// is stored again.
func (s *supervision) watchOutage() {
	if s.reg == nil {
		return
	}
	st := s.reg.Status()
	switch {
	case !st.Registered && !s.down:
		s.down = true
		why := "not stored"
		if st.Err != nil {
			why = st.Err.Error()
		}
		s.r.say("registration lost (%s): registering again as soon as etcd takes it", why)
	case st.Registered && s.down:
		s.down = false
		s.r.say("registered again")
	}
}
