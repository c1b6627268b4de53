package config

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Get returns the current value of name, or an error wrapping
// [ErrNotFound] if nothing was published under it.
func Get(ctx context.Context, cli *clientv3.Client, name string) (Value, error) {
	checkName(name)
	resp, err := cli.Get(ctx, currentKey(name))
	if err != nil {
		return Value{}, fmt.Errorf("config: get %q: %w", name, refused(err, name))
	}
	if len(resp.Kvs) == 0 {
		return Value{}, fmt.Errorf("config: get %q: %w", name, ErrNotFound)
	}
	kv := resp.Kvs[0]
	v, err := decodeRecord(string(kv.Key), kv.Value, kv.ModRevision)
	if err != nil {
		return Value{}, fmt.Errorf("config: get %q: %w", name, err)
	}
	return v, nil
}

// History returns the last n versions of name, newest first (every version
// kept if n <= 0). Versions live in keys of their own, so etcd's compaction
// does not remove them; only [WithRetention] does.
func History(ctx context.Context, cli *clientv3.Client, name string, n int) ([]Value, error) {
	checkName(name)
	kvs, err := versionKVs(ctx, cli, name, n, 0)
	if err != nil {
		return nil, fmt.Errorf("config: history of %q: %w", name, refused(err, name))
	}
	out := make([]Value, 0, len(kvs))
	for _, kv := range kvs {
		v, err := decodeRecord(string(kv.Key), kv.Value, kv.ModRevision)
		if err != nil {
			return nil, fmt.Errorf("config: history of %q: %w", name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// readVersion returns version v of name.
func readVersion(ctx context.Context, cli *clientv3.Client, name string, v int64) (Value, error) {
	key := versionKey(name, v)
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return Value{}, refused(err, name)
	}
	if len(resp.Kvs) == 0 {
		return Value{}, fmt.Errorf("%w: version %d", ErrNotFound, v)
	}
	return decodeRecord(key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}
