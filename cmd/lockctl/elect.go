package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/coordkit/coordkit/election"
	"github.com/coordkit/coordkit/internal/errs"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func newElectCmd(cfg *config) *cobra.Command {
	o := &holdOpts{}
	var restart bool
	var restartDelay time.Duration
	cmd := &cobra.Command{
		Use:   "elect NAME [--value V] [--restart] -- CMD [ARGS...]",
		Short: "Run a command while leader of the election NAME",
		Long: `Campaign in the election NAME and run CMD while leader. Candidates lead in the order
they started campaigning; a coordkit election, etcd's concurrency.Election and etcdctl
elect on the same name see the same leader. --value is what 'lockctl status' and
observers see as the leader's value (default: this host, pid and program name).

Without --restart, lockctl exits when CMD does (with its code), after resigning so the
next candidate leads at once. --wait 0 gives up with --conflict-exit-code if another
candidate leads now.

With --restart, lockctl is a singleton-worker supervisor, for example under systemd:
it keeps campaigning, runs CMD whenever it leads, stops CMD (TERM, then KILL after
--kill-grace) when leadership is lost, and campaigns again after CMD exits or the
leadership is lost. When CMD exits by itself, lockctl resigns at once and waits before
it campaigns again: --restart-delay (1s) after the first exit, doubling after each
further one up to 1m, and back to --restart-delay after a run that lasted 1m or more.
A TERM or INT to lockctl is forwarded once to CMD; when CMD has exited, lockctl
resigns and exits 0 (at once if CMD is not running).

  [Service]
  ExecStart=/usr/local/bin/lockctl elect --restart workers/scheduler -- /usr/local/bin/scheduler
  Restart=always

` + exitCodesHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nameBeforeDash(cmd, args); err != nil {
				return err
			}
			name, argv := args[0], args[1:]
			if cmd.ArgsLenAtDash() != 1 && len(argv) > 0 {
				return usagef("put the command after --, e.g. lockctl elect %s -- %s", name, strings.Join(argv, " "))
			}
			if err := o.validate(cmd, argv); err != nil {
				return err
			}
			key, err := cfg.name(name)
			if err != nil {
				return err
			}
			value := o.holderValue(argv)
			if cmd.Flags().Changed("restart-delay") && !restart {
				return usagef("--restart-delay goes with --restart")
			}
			if restart {
				if o.waitSet {
					return usagef("--wait does not go with --restart, which campaigns for as long as it runs")
				}
				if restartDelay <= 0 {
					return usagef("--restart-delay %v: must be positive", restartDelay)
				}
				return superviseElection(cmd, cfg, o, key, value, argv, restartDelay)
			}
			return holdAndRun(cmd, cfg, o, key, argv, func(ctx context.Context, s *concurrency.Session) (hold, error) {
				e := election.New(s, key)
				var err error
				if o.waitSet && o.wait == 0 {
					err = e.TryCampaign(ctx, value)
				} else {
					err = e.Campaign(ctx, value)
				}
				if errors.Is(err, election.ErrLeaderExists) {
					err = errNotAcquired
				}
				return e, err
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&restart, "restart", false, "keep campaigning and re-run the command after it exits or leadership is lost")
	cmd.Flags().DurationVar(&restartDelay, "restart-delay", time.Second, "with --restart: the first wait before running the command again after it exited; it doubles up to 1m")
	return cmd
}

// The --restart backoff: the wait after the command exited by itself
// starts at --restart-delay and doubles up to restartMaxDelay; a run that
// lasted restartResetAfter or more starts it over. No jitter: only the
// leader restarts, so there is no herd to spread.
const (
	restartMaxDelay   = time.Minute
	restartResetAfter = time.Minute
)

func restartBackoff(first time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = first
	b.Multiplier = 2
	b.RandomizationFactor = 0
	b.MaxInterval = max(first, restartMaxDelay)
	b.MaxElapsedTime = 0 // never give up
	b.Reset()
	return b
}

// superviseElection is elect --restart: election.Run with the command as
// the work, run again by this loop after a backoff whenever the command
// exits by itself. election.Run resigns before it returns, so lockctl does
// not lead while it waits. A lost leadership is election.Run's to retry.
func superviseElection(cmd *cobra.Command, cfg *config, o *holdOpts, name, value string, argv []string, delay time.Duration) error {
	ctx := cmd.Context()
	// ctx bounds only the connection: the client lives until Close, so it
	// can still resign and revoke after a signal.
	cli, err := cfg.connect(ctx, keyPrefix(name))
	if err != nil {
		return err // connect tells an interruption from an unreachable etcd
	}
	defer cli.Close()
	b := restartBackoff(delay)
	for {
		var res childResult
		var took time.Duration
		rctx, cancel := context.WithCancel(ctx)
		err := election.Run(rctx, cli, name, func(_ context.Context, e *election.Election) error {
			lease, _, _ := strings.Cut(strings.TrimPrefix(e.Key(), e.Name()), "_")
			start := time.Now()
			// The command stops on a lost leadership or a signal to
			// lockctl, not on the end of Run's context: a signal is the
			// command's to act on, and it is forwarded once.
			res = runChild(ctx, cmd, nil, o, argv, childEnv(name, e, lease, o.passCreds), e.Done())
			took = time.Since(start)
			switch {
			case res.stopped || res.interrupted:
				cancel() // Run resigns and returns
			case res.lost:
				fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: %s: leadership lost (%v): command stopped; campaigning again\n", name, e.Err())
			}
			return nil
		}, election.WithTTL(time.Duration(o.ttl)*time.Second), election.WithValue(value))
		cancel()
		switch {
		case res.stopped || res.interrupted || ctx.Err() != nil:
			return nil // stopped by a signal: the command has exited and we resigned
		case errs.Refused(err):
			return refused(cfg, "write", keyPrefix(name), err)
		case err != nil:
			return withCode(ExitUnavailable, fmt.Errorf("%s: %w", name, err))
		}
		if took >= restartResetAfter {
			b.Reset()
		}
		d := b.NextBackOff()
		fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: %s: command exited with code %d after %v; resigned; running it again in %v\n",
			name, res.code, took.Round(time.Millisecond), d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
