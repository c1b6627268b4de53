package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// entry is one key of a lock, semaphore or election, as status shows it.
type entry struct {
	Key    string      `json:"key"`
	Role   string      `json:"role"`             // holder or waiter
	Weight int         `json:"weight,omitempty"` // semaphore permits asked for
	Limit  int         `json:"limit,omitempty"`  // semaphore limit
	Lease  string      `json:"lease"`
	TTL    int64       `json:"ttl"`   // seconds left on the lease, -1 if none
	Token  int64       `json:"token"` // the key's create revision
	Holder *holderInfo `json:"holder,omitempty"`
	Value  string      `json:"value,omitempty"` // when not written by lockctl
}

// entries reads the keys under name/ in line order. The first is the
// holder of a lock or the leader of an election.
func entries(ctx context.Context, cli *clientv3.Client, prefix string) ([]entry, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	var out []entry
	used, blocked := 0, false // semaphore: permits granted so far; a request did not fit
	for i, kv := range resp.Kvs {
		e := entry{Key: string(kv.Key), Role: "waiter", Lease: fmt.Sprintf("%x", kv.Lease), TTL: -1, Token: kv.CreateRevision}
		value := kv.Value
		// A semaphore's keys hold {"weight","limit","value"}: the first
		// requests that fit in the limit, in line order, hold.
		var sem struct {
			Weight int    `json:"weight"`
			Limit  int    `json:"limit"`
			Value  string `json:"value"`
		}
		if json.Unmarshal(kv.Value, &sem) == nil && sem.Limit > 0 {
			e.Weight, e.Limit, value = sem.Weight, sem.Limit, []byte(sem.Value)
			if !blocked && used+sem.Weight <= sem.Limit {
				used += sem.Weight
				e.Role = "holder"
			} else {
				blocked = true
			}
		} else if i == 0 {
			e.Role = "holder"
		}
		if kv.Lease != 0 {
			if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err == nil {
				e.TTL = ttl.TTL
			}
		}
		var hi holderInfo
		if json.Unmarshal(value, &hi) == nil && hi.PID != 0 {
			e.Holder = &hi
		} else {
			e.Value = string(value)
		}
		out = append(out, e)
	}
	return out, nil
}

// withEntries connects, reads name's entries within the command timeout
// and hands them to f, with the context and client it used.
func withEntries(cmd *cobra.Command, cfg *config, name string, f func(context.Context, *clientv3.Client, []entry) error) error {
	prefix, err := cfg.name(name)
	if err != nil {
		return err
	}
	cli, err := cfg.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), cfg.commandTimeout)
	defer cancel()
	es, err := entries(ctx, cli, strings.TrimSuffix(prefix, "/")+"/")
	if err != nil {
		return unavailable(cfg.endpoints, err)
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
lease, fencing token, and the host, pid and command of the lockctl that wrote it.`,
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
			who = fmt.Sprintf("%s pid %d: %s", e.Holder.Host, e.Holder.PID, e.Holder.what())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", e.Role, e.Token, e.Lease, e.TTL, who, e.Key)
	}
	return tw.Flush()
}

func newLsCmd(cfg *config) *cobra.Command {
	out := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the names in use under PREFIX",
		Long:  "List every lock, semaphore or election name under PREFIX (default: everything) with its number of keys.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			prefix := cfg.namespace
			if len(args) == 1 {
				prefix += args[0]
			}
			cli, err := cfg.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.commandTimeout)
			defer cancel()
			opts := []clientv3.OpOption{clientv3.WithKeysOnly(), clientv3.WithPrefix()}
			if prefix == "" {
				opts = []clientv3.OpOption{clientv3.WithKeysOnly(), clientv3.WithFromKey()}
				prefix = "\x00"
			}
			resp, err := cli.Get(ctx, prefix, opts...)
			if err != nil {
				return unavailable(cfg.endpoints, err)
			}
			type name struct {
				Name string `json:"name"`
				Keys int    `json:"keys"`
			}
			var names []name
			idx := map[string]int{}
			for _, kv := range resp.Kvs {
				n := strings.TrimPrefix(path.Dir(string(kv.Key)), cfg.namespace)
				if i, ok := idx[n]; ok {
					names[i].Keys++
					continue
				}
				idx[n] = len(names)
				names = append(names, name{Name: n, Keys: 1})
			}
			w := cmd.OutOrStdout()
			if out.format == "json" {
				if names == nil {
					names = []name{}
				}
				return json.NewEncoder(w).Encode(names)
			}
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKEYS")
			for _, n := range names {
				fmt.Fprintf(tw, "%s\t%d\n", n.Name, n.Keys)
			}
			return tw.Flush()
		},
	}
	out.flags(cmd)
	return cmd
}

func newReleaseCmd(cfg *config) *cobra.Command {
	var force, yes bool
	cmd := &cobra.Command{
		Use:   "release NAME --force [--yes]",
		Short: "Break a stuck hold on NAME by revoking its holder's lease",
		Long: `Revoke the lease of NAME's current holder, which deletes every key on that lease: the
holder loses NAME (and anything else it held through the same session), and the next
waiter takes over. A lockctl holder stops its command (TERM, then KILL) and exits 76.
Use it only for a holder that is stuck; it asks for confirmation unless --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				return usagef("release breaks someone else's hold: add --force if you mean it")
			}
			return withEntries(cmd, cfg, args[0], func(_ context.Context, cli *clientv3.Client, es []entry) error {
				if len(es) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s is free: nothing to release\n", args[0])
					return nil
				}
				h := es[0]
				if !yes {
					fmt.Fprintf(cmd.OutOrStdout(), "Revoke lease %s of %s (token %d)? [y/N] ", h.Lease, h.Key, h.Token)
					line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
					if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
						return usagef("not confirmed: nothing done")
					}
				}
				// A fresh timeout: a person may have taken a while to answer.
				ctx, cancel := context.WithTimeout(cmd.Context(), cfg.commandTimeout)
				defer cancel()
				var id int64
				fmt.Sscanf(h.Lease, "%x", &id)
				if id == 0 {
					if _, err := cli.Delete(ctx, h.Key); err != nil {
						return unavailable(cfg.endpoints, err)
					}
				} else if _, err := cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
					return unavailable(cfg.endpoints, err)
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
