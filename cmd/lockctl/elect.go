package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coordkit/coordkit/election"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func newElectCmd(cfg *config) *cobra.Command {
	o := &holdOpts{}
	var value string
	var restart bool
	cmd := &cobra.Command{
		Use:   "elect NAME [--value V] [--restart] -- CMD [ARGS...]",
		Short: "Run a command while leader of the election NAME",
		Long: `Campaign in the election NAME and run CMD while leader. Candidates lead in the order
they started campaigning; a coordkit election, etcd's concurrency.Election and etcdctl
elect on the same name see the same leader. --value is what 'lockctl status' and
observers see as the leader's value (default: this host, pid and command).

Without --restart, lockctl exits when CMD does (with its code), after resigning so the
next candidate leads at once. --wait 0 gives up with --conflict-exit-code if another
candidate leads now.

With --restart, lockctl is a singleton-worker supervisor, for example under systemd:
it keeps campaigning, runs CMD whenever it leads, stops CMD (TERM, then KILL after
--kill-grace) when leadership is lost, and campaigns again after CMD exits or the
leadership is lost, with backoff. A TERM or INT to lockctl stops CMD, resigns and
exits 0.

  [Service]
  ExecStart=/usr/local/bin/lockctl elect --restart workers/scheduler -- /usr/local/bin/scheduler
  Restart=always

` + exitCodesHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			if value == "" {
				value = holderValue(argv)
			}
			if restart {
				if o.waitSet {
					return usagef("--wait does not go with --restart, which campaigns for as long as it runs")
				}
				return superviseElection(cmd, cfg, o, key, value, argv)
			}
			return holdAndRun(cmd, cfg, o, key, argv, func(ctx context.Context, s *concurrency.Session) (hold, error) {
				e := election.New(s, key)
				if o.waitSet && o.wait == 0 {
					// No try-campaign exists: ask who leads, and campaign only if
					// nobody does. Another candidate may still slip in first;
					// then the campaign gives up after --command-timeout
					// rather than wait behind it, as --wait 0 promises.
					if l, err := e.Leader(ctx); err == nil {
						return e, fmt.Errorf("%w (leader token %d)", errNotAcquired, l.Rev)
					} else if !errors.Is(err, election.ErrNoLeader) {
						return e, err
					}
					cctx, cancel := context.WithTimeout(ctx, cfg.CommandTimeout)
					defer cancel()
					err := e.Campaign(cctx, value)
					if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
						err = errNotAcquired
					}
					return e, err
				}
				return e, e.Campaign(ctx, value)
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&value, "value", "", "the leader's value that observers see (default: host, pid and command)")
	cmd.Flags().BoolVar(&restart, "restart", false, "keep campaigning and re-run the command after it exits or leadership is lost")
	return cmd
}

// superviseElection is elect --restart: election.Run with the command as
// the work.
func superviseElection(cmd *cobra.Command, cfg *config, o *holdOpts, name, value string, argv []string) error {
	ctx := cmd.Context()
	cli, err := cfg.connect(ctx, keyPrefix(name))
	if err != nil {
		return err
	}
	defer cli.Close()
	err = election.Run(ctx, cli, name, func(lctx context.Context, e *election.Election) error {
		lease, _, _ := strings.Cut(strings.TrimPrefix(e.Key(), e.Name()), "_")
		code, lost := runChild(cmd, o, argv, childEnv(name, e, lease), lctx.Done())
		switch {
		case lost && ctx.Err() == nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: %s: leadership lost (%v): command stopped; campaigning again\n", name, context.Cause(lctx))
		case ctx.Err() == nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "lockctl: %s: command exited with code %d; campaigning again\n", name, code)
		}
		return nil
	}, election.WithTTL(time.Duration(o.ttl)*time.Second), election.WithValue(value), election.WithRecampaign())
	if ctx.Err() != nil {
		return nil // stopped by a signal: the command was stopped and we resigned
	}
	return withCode(ExitUnavailable, fmt.Errorf("%s: %w", name, err))
}
