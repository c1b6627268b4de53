package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coordkit/coordkit/registry"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// found is one instance as discover shows it. Its JSON is discover's
// stable output.
type found struct {
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	State    string            `json:"state"` // serving or draining
	Metadata map[string]string `json:"metadata"`
	Weight   int               `json:"weight,omitempty"`
	Key      string            `json:"key"`
	Lease    string            `json:"lease"` // hex, "" if none
	TTL      int64             `json:"ttl"`   // seconds left on the lease, -1 if unknown or none
}

// watchLine is one line of discover --watch -o json: the set after a
// change, and whether it is the last known one because etcd cannot be
// reached.
type watchLine struct {
	Rev       int64   `json:"rev"`
	Stale     bool    `json:"stale"`
	Instances []found `json:"instances"`
}

func newDiscoverCmd(cfg *config) *cobra.Command {
	out := &outputFlag{}
	var watch bool
	cmd := &cobra.Command{
		Use:   "discover SERVICE [-o table|json] [--watch]",
		Short: "List the registered instances of SERVICE",
		Long: `List the instances of SERVICE: those 'lockctl register', coordkit's registry.Register
or etcd's client/v3/naming endpoints.Manager stored under SERVICE/. For each: its ID,
address, state (serving, or draining: clients should send it no new work), metadata,
and the seconds left on its lease. -o json prints a JSON array of objects with the
fields id, addr, state, metadata, weight (when set), key, lease and ttl.

With --watch, discover prints the set again after every change (changes that come
quickly are coalesced into one print), until INT or TERM (exit 0). While etcd cannot be
reached it keeps the last set it saw and says so: a table gets a line "stale: ...", and
-o json prints one JSON object per line, {"rev":N,"stale":BOOL,"instances":[...]}.

  lockctl discover svc/hello
  lockctl discover svc/hello -o json | jq -r '.[] | select(.state == "serving") | .addr'
  lockctl discover svc/hello --watch

` + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			service, err := cfg.name(args[0])
			if err != nil {
				return err
			}
			service = strings.TrimSuffix(service, "/")
			return discover(cmd, cfg, service, out.format, watch)
		},
	}
	out.flags(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the set again after every change, until INT or TERM")
	return cmd
}

// discover connects, follows service with a registry.View and prints its
// set once (when the View is ready) or after every change (--watch).
func discover(cmd *cobra.Command, cfg *config, service, format string, watch bool) error {
	ctx := cmd.Context()
	prefix := keyPrefix(service)
	cli, err := cfg.connect(ctx, prefix)
	if err != nil {
		return err
	}
	defer cli.Close()
	v := registry.Watch(cli, service)
	defer v.Close()

	t := time.NewTimer(cfg.DialTimeout + cfg.CommandTimeout)
	defer t.Stop()
	select {
	case <-v.Ready():
	case <-v.Done():
		return viewError(cfg, prefix, v.Err())
	case <-ctx.Done():
		return interrupted()
	case <-t.C:
		return withCode(ExitUnavailable, fmt.Errorf("cannot read %s from etcd at %s within --dial-timeout + --command-timeout",
			prefix, strings.Join(cfg.Endpoints, ",")))
	}
	w := cmd.OutOrStdout()
	if !watch {
		return printFound(w, format, listed(ctx, cfg, cli, v.Snapshot()))
	}
	for {
		// The View notifies only on a change to the set or to Stale, not
		// on a new revision alone.
		snap := v.Snapshot()
		if err := printWatch(w, format, snap, listed(ctx, cfg, cli, snap)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil // stopped: the usual way to end --watch
		case _, ok := <-v.Changes():
			if !ok {
				if err := v.Err(); err != nil {
					return viewError(cfg, prefix, err)
				}
				return nil
			}
		}
	}
}

// viewError is the exit error for a View that stopped following etcd.
func viewError(cfg *config, prefix string, err error) error {
	if rerr := refused(cfg, "read", prefix, err); rerr != nil {
		return rerr
	}
	return unavailable(cfg.Endpoints, err)
}

// listed turns snap into discover's rows, with the TTL left on each key's
// lease when etcd answers quickly (not while the View is stale).
func listed(ctx context.Context, cfg *config, cli *clientv3.Client, snap registry.Snapshot) []found {
	out := make([]found, 0, len(snap.Instances))
	for _, in := range snap.Instances {
		md := in.Metadata
		if md == nil {
			md = map[string]string{}
		}
		out = append(out, found{ID: in.ID, Addr: in.Addr, State: in.State.String(), Metadata: md,
			Weight: in.Weight, Key: in.Key(), TTL: -1})
	}
	if snap.Stale || len(out) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, min(cfg.CommandTimeout, 2*time.Second))
	defer cancel()
	resp, err := cli.Get(ctx, keyPrefix(snap.Instances[0].Service), clientv3.WithPrefix())
	if err != nil {
		return out
	}
	leases := map[string]int64{}
	for _, kv := range resp.Kvs {
		leases[string(kv.Key)] = kv.Lease
	}
	ttls := map[int64]int64{}
	for i := range out {
		id, ok := leases[out[i].Key]
		if !ok || id == 0 {
			continue
		}
		out[i].Lease = fmt.Sprintf("%x", id)
		ttl, seen := ttls[id]
		if !seen {
			ttl = -1
			if r, err := cli.TimeToLive(ctx, clientv3.LeaseID(id)); err == nil {
				ttl = r.TTL
			}
			ttls[id] = ttl
		}
		out[i].TTL = ttl
	}
	return out
}

// printFound prints the rows once: a JSON array, or a table.
func printFound(w io.Writer, format string, fs []found) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(fs)
	}
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "no instances")
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tSTATE\tTTL\tMETADATA")
	for _, f := range fs {
		var md []string
		for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
			md = append(md, k+"="+f.Metadata[k])
		}
		if f.Weight != 0 {
			md = append(md, fmt.Sprintf("(weight %d)", f.Weight))
		}
		ttl := "-"
		if f.TTL >= 0 {
			ttl = fmt.Sprint(f.TTL)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, f.Addr, f.State, ttl, strings.Join(md, ","))
	}
	return tw.Flush()
}

// printWatch prints the set after a change, for --watch: one JSON line, or
// a table under a line that gives the revision and says when it is stale.
func printWatch(w io.Writer, format string, snap registry.Snapshot, fs []found) error {
	if format == "json" {
		return json.NewEncoder(w).Encode(watchLine{Rev: snap.Rev, Stale: snap.Stale, Instances: fs})
	}
	if snap.Stale {
		fmt.Fprintf(w, "stale: etcd cannot be reached; the last known set (revision %d):\n", snap.Rev)
	} else {
		fmt.Fprintf(w, "revision %d:\n", snap.Rev)
	}
	if err := printFound(w, format, fs); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}
