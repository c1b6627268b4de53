package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// header is the first line of every record: what a version is, apart from
// its data, which follows the newline as is (JSON escapes newlines, so the
// first newline ends the header).
type header struct {
	Name    string    `json:"name"`
	Version int64     `json:"version"`
	Author  string    `json:"author,omitempty"`
	Comment string    `json:"comment,omitempty"`
	Time    time.Time `json:"time"`
}

// Value is one published version of a configuration.
type Value struct {
	Name    string    // the configuration's name
	Version int64     // 1 for the first publish, then one more per publish
	Data    []byte    // the value as published
	Author  string    // who published it ([WithAuthor])
	Comment string    // why ([WithComment])
	Time    time.Time // when the publisher wrote it, by its clock
	// Revision is the etcd revision at which the key read was last written:
	// the publish for a version key, the latest publish for Get.
	Revision int64
}

func currentKey(name string) string { return name + "/current" }

func versionKey(name string, v int64) string { return fmt.Sprintf("%s/v/%020d", name, v) }

// versionRange returns the key range that holds every version key of name
// and nothing else: the 20 digits sort below ':'.
func versionRange(name string) (start, end string) { return name + "/v/0", name + "/v/:" }

func encode(v Value) []byte {
	h, _ := json.Marshal(header{Name: v.Name, Version: v.Version, Author: v.Author, Comment: v.Comment, Time: v.Time})
	b := make([]byte, 0, len(h)+1+len(v.Data))
	b = append(append(h, '\n'), v.Data...)
	return b
}

// decodeRecord parses a record read from key at revision rev.
func decodeRecord(key string, raw []byte, rev int64) (Value, error) {
	i := bytes.IndexByte(raw, '\n')
	var h header
	if i < 0 || json.Unmarshal(raw[:i], &h) != nil || h.Version <= 0 {
		return Value{}, fmt.Errorf("%w: key %q", ErrMalformed, key)
	}
	return Value{
		Name: h.Name, Version: h.Version, Data: raw[i+1:],
		Author: h.Author, Comment: h.Comment, Time: h.Time, Revision: rev,
	}, nil
}

// keyVersion returns the version number a version key of name names, or
// 0 if key is not one: exactly 20 digits after name/v/. Other keys in the
// version range (written directly, or a configuration named name/v/...)
// are not versions.
func keyVersion(name, key string) int64 {
	digits, ok := strings.CutPrefix(key, name+"/v/")
	if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
		return 0
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// versionKVs returns the version keys of name, newest first, read at rev
// (0: the latest revision): at most n, every one if n <= 0. It skips the
// keys in the version range that are not version keys, reading further
// pages past them.
func versionKVs(ctx context.Context, cli *clientv3.Client, name string, n int, rev int64, opts ...clientv3.OpOption) ([]*mvccpb.KeyValue, error) {
	start, end := versionRange(name)
	var out []*mvccpb.KeyValue
	for {
		resp, err := cli.Get(ctx, start, append([]clientv3.OpOption{clientv3.WithRange(end), clientv3.WithRev(rev),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(max(n, 0)))}, opts...)...)
		if err != nil {
			return nil, err
		}
		rev = resp.Header.Revision // later pages read the same revision
		for _, kv := range resp.Kvs {
			if keyVersion(name, string(kv.Key)) == 0 {
				continue
			}
			if out = append(out, kv); n > 0 && len(out) == n {
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}

// checkName panics on a name that cannot be a configuration's.
func checkName(name string) {
	if name == "" || strings.HasSuffix(name, "/") {
		panic(fmt.Sprintf("config: name %q is empty or ends in /", name))
	}
}
