package console

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/coordkit/coordkit/config"
	"github.com/coordkit/coordkit/etcdclient"
	"github.com/coordkit/coordkit/internal/holds"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// prefixView is what the page shows for one prefix.
type prefixView struct {
	Prefix   string
	Refused  string // etcd's RBAC refused to read the prefix: why
	Err      string // another failure
	Holds    []holdView
	Services []serviceView
	Configs  []config.Value // the current version of each
	Write    bool
	CSRF     string
}

// holdView is one lock, semaphore, rwlock or election.
type holdView struct {
	Name    string
	Kind    string
	Leader  string // the first holder's key: an election's leader
	Entries []holdRow
}

type holdRow struct {
	holds.Entry
	Age string
}

type serviceView struct {
	Name      string
	Instances []instanceView
}

type instanceView struct {
	ID, Addr, State string
	Metadata        map[string]string
	Weight          int
	TTL             int64
}

// isRefused reports whether etcd refused a request because of the user.
func isRefused(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, config.ErrRefused) ||
		errors.Is(err, etcdclient.ErrPermission) || errors.Is(err, rpctypes.ErrGRPCPermissionDenied)
}

func rangeOf(prefix string) (string, []clientv3.OpOption) {
	if prefix == "" {
		return "\x00", []clientv3.OpOption{clientv3.WithFromKey()}
	}
	return prefix, []clientv3.OpOption{clientv3.WithPrefix()}
}

// readPrefix reads everything the page shows under prefix: one range read,
// then each hold's line, each config's current record and the leases' TTLs.
func readPrefix(ctx context.Context, cli *clientv3.Client, prefix string) prefixView {
	v := prefixView{Prefix: prefix}
	key, opts := rangeOf(prefix)
	opts = append(opts, clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	resp, err := cli.Get(ctx, key, opts...)
	if err != nil {
		v.fail(prefix, err)
		return v
	}
	var holdNames []string
	seen := map[string]bool{}
	services := map[string]*serviceView{}
	var serviceOrder []string
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if h, ok := holds.Parse(kv); ok {
			if !seen[h.Name] {
				seen[h.Name] = true
				holdNames = append(holdNames, h.Name)
			}
			continue
		}
		if name, ok := strings.CutSuffix(k, "/current"); ok && configName(name) {
			cur, err := config.Get(ctx, cli, name)
			if err == nil {
				v.Configs = append(v.Configs, cur)
			}
			continue
		}
		if in, ok := instance(kv.Value); ok {
			svc := path.Dir(k)
			in.ID = path.Base(k)
			in.TTL = -1
			if kv.Lease != 0 {
				if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err == nil {
					in.TTL = ttl.TTL
				}
			}
			s := services[svc]
			if s == nil {
				s = &serviceView{Name: svc}
				services[svc] = s
				serviceOrder = append(serviceOrder, svc)
			}
			s.Instances = append(s.Instances, in)
		}
	}
	for _, name := range holdNames {
		es, err := holds.Entries(ctx, cli, name+"/")
		if err != nil {
			v.fail(name+"/", err)
			return v
		}
		hv := holdView{Name: name}
		for _, e := range es {
			if e.Role == "other" {
				continue
			}
			if hv.Leader == "" && e.Role == "holder" {
				hv.Leader = e.Key
			}
			hv.Entries = append(hv.Entries, holdRow{Entry: e, Age: age(e.Holder)})
		}
		for _, kv := range resp.Kvs {
			if h, ok := holds.Parse(kv); ok && h.Name == name {
				hv.Kind = h.Kind
				break
			}
		}
		if len(hv.Entries) > 0 {
			v.Holds = append(v.Holds, hv)
		}
	}
	sort.Strings(serviceOrder)
	for _, s := range serviceOrder {
		sv := services[s]
		sort.Slice(sv.Instances, func(i, j int) bool { return sv.Instances[i].ID < sv.Instances[j].ID })
		v.Services = append(v.Services, *sv)
	}
	sort.Slice(v.Configs, func(i, j int) bool { return v.Configs[i].Name < v.Configs[j].Name })
	return v
}

// configName reports whether name can be a configuration's: package config
// refuses (panics on) an empty name or one ending in "/", which a key such
// as "jobs//current" would give.
func configName(name string) bool { return name != "" && !strings.HasSuffix(name, "/") }

func (v *prefixView) fail(prefix string, err error) {
	if isRefused(err) {
		v.Refused = "etcd refused to read " + quote(prefix) + " for this user (permission denied by etcd RBAC): start the console with a --prefix its role may read"
		return
	}
	v.Err = err.Error()
}

func quote(prefix string) string {
	if prefix == "" {
		return "the whole key space"
	}
	return `"` + prefix + `"`
}

// instance decodes a registry value: the JSON that package registry and
// etcd's naming/endpoints write.
func instance(b []byte) (instanceView, bool) {
	var v struct {
		Addr     string
		Metadata map[string]string
		Weight   int
		State    string
	}
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &v) != nil || v.Addr == "" {
		return instanceView{}, false
	}
	st := v.State
	if st == "" {
		st = "serving"
	}
	return instanceView{Addr: v.Addr, Metadata: v.Metadata, Weight: v.Weight, State: st}, true
}

// age is how long a lockctl holder has held (or waited), from its Since.
func age(h *holds.HolderInfo) string {
	if h == nil {
		return ""
	}
	t, err := time.Parse(time.RFC3339, h.Since)
	if err != nil {
		return ""
	}
	return time.Since(t).Round(time.Second).String()
}
