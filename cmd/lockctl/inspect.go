package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/coordkit/coordkit/etcdclient"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// withEntries connects, reads name's entries within the command timeout
// and hands them to f, with the context and client it used.
func withEntries(cmd *cobra.Command, cfg *config, name string, f func(context.Context, *clientv3.Client, []entry) error) error {
	key, err := cfg.name(name)
	if err != nil {
		return err
	}
	prefix := keyPrefix(key)
	cli, err := cfg.connect(cmd.Context(), prefix)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), cfg.CommandTimeout)
	defer cancel()
	es, err := entries(ctx, cli, prefix)
	if err != nil {
		if rerr := refused(cfg, "read", prefix, err); rerr != nil {
			return rerr
		}
		return unavailable(cfg.Endpoints, err)
	}
	return f(ctx, cli, es)
}

type outputFlag struct{ format string }

func (o *outputFlag) flags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
}

func (o *outputFlag) validate() error {
	if o.format != "table" && o.format != "json" {
		return usagef("-o %q: use table or json", o.format)
	}
	return nil
}

func newStatusCmd(cfg *config) *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show who holds NAME and who waits for it",
		Long: `Show the keys of the lock, semaphore or election NAME in line order: the first is
the holder (or leader), the rest wait. For each: its key, lease, seconds left on the
lease, fencing token, and the host, pid and program of the lockctl that wrote it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			return withEntries(cmd, cfg, args[0], func(_ context.Context, _ *clientv3.Client, es []entry) error {
				return printEntries(cmd.OutOrStdout(), out.format, es)
			})
		},
	}
	out.flags(cmd)
	return cmd
}

func printEntries(w io.Writer, format string, es []entry) error {
	if format == "json" {
		if es == nil {
			es = []entry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(es)
	}
	if len(es) == 0 {
		fmt.Fprintln(w, "free: nobody holds or waits")
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tTOKEN\tLEASE\tTTL\tHOLDER\tKEY")
	for _, e := range es {
		who := e.Value
		if e.Holder != nil {
			who = fmt.Sprintf("%s pid %d: %s", e.Holder.Host, e.Holder.PID, e.Holder.What())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", e.Role, e.Token, e.Lease, e.TTL, who, e.Key)
	}
	return tw.Flush()
}

func newLsCmd(cfg *config) *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the locks, semaphores, rwlocks and elections under PREFIX",
		Long: `List every lock, semaphore, rwlock or election name under PREFIX (default: the whole
key space) with its kind and its numbers of holders and waiters. Only keys in a layout
lockctl knows (a key on a lease named after that lease) count: other data is not listed.
A lock and an election look the same in etcd: their kind is lock/election.

A user whom etcd's RBAC allows only some prefixes cannot read the whole key space:
give a PREFIX inside them, e.g. lockctl ls jobs/.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			prefix := cfg.namespace
			if len(args) == 1 {
				prefix += args[0]
			}
			// Without a prefix, the probe reads the first key there is:
			// a user limited to prefixes is refused there, as the listing
			// would be.
			probe := prefix
			if probe == "" {
				probe = "\x00"
			}
			cli, err := cfg.connect(cmd.Context(), probe)
			if err != nil {
				return lsRefused(prefix, err)
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.CommandTimeout)
			defer cancel()
			key, opts := prefix, []clientv3.OpOption{clientv3.WithPrefix()}
			if prefix == "" {
				key, opts = "\x00", []clientv3.OpOption{clientv3.WithFromKey()}
			}
			opts = append(opts, clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
			resp, err := cli.Get(ctx, key, opts...)
			if err != nil {
				if rerr := refused(cfg, "read", prefix, err); rerr != nil {
					return lsRefused(prefix, rerr)
				}
				return unavailable(cfg.Endpoints, err)
			}
			ns := names(resp.Kvs, cfg.namespace)
			w := cmd.OutOrStdout()
			if out.format == "json" {
				if ns == nil {
					ns = []lsName{}
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(ns)
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tHOLDERS\tWAITERS")
			for _, n := range ns {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", n.Name, n.Kind, n.Holders, n.Waiters)
			}
			return tw.Flush()
		},
	}
	out.flags(cmd)
	return cmd
}

// lsRefused explains a refused listing of the whole key space: the user's
// role covers only some prefixes, so ls needs one of them.
func lsRefused(prefix string, err error) error {
	if prefix != "" || !errors.Is(err, etcdclient.ErrPermission) {
		return err
	}
	return withCode(ExitUnavailable, fmt.Errorf("etcd refused to read the whole key space for this user (permission denied by etcd RBAC): ls without a PREFIX lists everything; give a PREFIX its role may read, e.g. lockctl ls jobs/: %w", rpctypes.ErrPermissionDenied))
}

func newReleaseCmd(cfg *config) *cobra.Command {
	var force, yes bool
	cmd := &cobra.Command{
		Use:   "release NAME --force [--yes]",
		Short: "Break a stuck hold on NAME by revoking its holder's lease",
		Long: `Revoke the lease of NAME's current holder, which deletes every key on that lease: the
holder loses NAME (and anything else it held through the same session), and the next
waiter takes over. A lockctl holder stops its command (TERM, then KILL) and exits 76.
Use it only for a holder that is stuck; it asks for confirmation unless --yes.

release acts only on holds: keys on a lease in a layout lockctl knows (a lock's,
election's, semaphore's or rwlock's key, named after its lease). If NAME holds other
keys only, or the holder's lease also carries keys that are not holds, it refuses with
exit 64 and deletes nothing. It never deletes a key that has no lease.

A user limited by etcd's RBAC needs write permission on every key of the holder's lease
(etcd checks that before it revokes one).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				return usagef("release breaks someone else's hold: add --force if you mean it")
			}
			return withEntries(cmd, cfg, args[0], func(_ context.Context, cli *clientv3.Client, es []entry) error {
				h, others := firstHold(es)
				switch {
				case h == nil && others > 0:
					return usagef("%s is not a lock, semaphore, rwlock or election: its %d key(s), such as %s, are not holds (release acts only on keys on a lease, named after it); nothing deleted", args[0], others, firstOther(es))
				case h == nil:
					fmt.Fprintf(cmd.OutOrStdout(), "%s is free: nothing to release\n", args[0])
					return nil
				}
				if !yes {
					fmt.Fprintf(cmd.OutOrStdout(), "Revoke lease %s of %s (token %d)? [y/N] ", h.Lease, h.Key, h.Token)
					line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
						return usagef("not confirmed: nothing done")
					}
				}
				// A fresh timeout: a person may have taken a while to answer.
				ctx, cancel := context.WithTimeout(cmd.Context(), cfg.CommandTimeout)
				defer cancel()
				var id int64
				fmt.Sscanf(h.Lease, "%x", &id)
				if err := revokeHold(ctx, cli, clientv3.LeaseID(id), h.Key); err != nil {
					if rerr := refused(cfg, "revoke the lease "+h.Lease+" of", h.Key, err); rerr != nil {
						return rerr
					}
					if codeOf(err) == ExitUsage {
						return err
					}
					return unavailable(cfg.Endpoints, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "released %s (token %d)\n", h.Key, h.Token)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "really break the hold")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func firstOther(es []entry) string {
	for _, e := range es {
		if e.Role == "other" {
			return e.Key
		}
	}
	return ""
}
