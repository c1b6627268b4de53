package config

import (
	"context"
	"fmt"
	"time"

	"github.com/coordkit/coordkit/internal/errs"
	"github.com/coordkit/coordkit/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// requestOverhead bounds what a Txn request adds to its keys and values:
// the message framing and the compare. opOverhead is per operation.
const requestOverhead, opOverhead = 512, 32

// maxStuck is how many times in a row Publish's transaction may fail while
// nothing was published before Publish gives up.
const maxStuck = 5

// Publish makes data the value of name: in one transaction it writes the
// current value, an immutable version key numbered one past the latest, and
// who, when and why ([WithAuthor], [WithComment]). It returns the version
// written.
//
// The transaction commits only if nothing was published since Publish
// read the latest version (the current key is unchanged), so concurrent publishers get distinct
// consecutive versions: Publish reads again and retries, paced, when it
// loses the race, unless [WithExpectedVersion] was given, in which case it
// returns [ErrConflict]. It also returns [ErrConflict] if the transaction
// fails a few times in a row while nothing was published (something else
// writes version keys). The validator of [WithValidator] runs first: if it refuses,
// Publish returns an error wrapping [ErrInvalid] and writes nothing. A
// value too large for etcd's request limit ([WithMaxRequestBytes]) is
// refused with [ErrTooLarge] before anything is sent: data is written
// twice (current and version key), so it can be at most a little under
// half the limit. A refusal by etcd's access control wraps [ErrRefused].
//
// Publish does not retry etcd's errors: a write that failed with one may
// still have been applied. [History] tells.
func Publish(ctx context.Context, cli *clientv3.Client, name string, data []byte, opts ...Option) (int64, error) {
	checkName(name)
	o := buildOptions(opts)
	v, err := publish(ctx, cli, name, data, o)
	if err != nil {
		return 0, fmt.Errorf("config: publish %q: %w", name, err)
	}
	return v, nil
}

// Rollback publishes, as a new version, the data of an earlier version of
// name, with the same checks and options as [Publish] (the default
// comment names the version restored). It returns the new version, or an
// error wrapping [ErrNotFound] if version is not in the history.
func Rollback(ctx context.Context, cli *clientv3.Client, name string, version int64, opts ...Option) (int64, error) {
	checkName(name)
	o := buildOptions(opts)
	old, err := readVersion(ctx, cli, name, version)
	if err != nil {
		return 0, fmt.Errorf("config: roll %q back to version %d: %w", name, version, err)
	}
	if o.comment == "" {
		o.comment = fmt.Sprintf("rollback to version %d", version)
	}
	v, err := publish(ctx, cli, name, old.Data, o)
	if err != nil {
		return 0, fmt.Errorf("config: roll %q back to version %d: %w", name, version, err)
	}
	return v, nil
}

func publish(ctx context.Context, cli *clientv3.Client, name string, data []byte, o options) (int64, error) {
	if o.validate != nil {
		if err := o.validate(data); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	var pace *retry.Pacer
	for stuck := 0; ; {
		latest, curRev, err := latestVersion(ctx, cli, name)
		if err != nil {
			return 0, err
		}
		if o.hasExpected && latest != o.expected {
			return 0, fmt.Errorf("%w: version is %d, expected %d", ErrConflict, latest, o.expected)
		}
		next := latest + 1
		rec := encode(Value{Name: name, Version: next, Data: data, Author: o.author, Comment: o.comment, Time: time.Now().UTC()})
		cur, vk := currentKey(name), versionKey(name, next)
		if size := requestOverhead + 2*len(rec) + len(cur) + len(vk) + 4*opOverhead; size > o.maxRequest {
			return 0, fmt.Errorf("%w: %d bytes of data make a %d-byte request, over etcd's limit of %d (data is written twice, as the current value and as version %d)",
				ErrTooLarge, len(data), size, o.maxRequest, next)
		}
		ops := []clientv3.Op{clientv3.OpPut(cur, string(rec)), clientv3.OpPut(vk, string(rec))}
		if o.keep > 0 && next-o.keep >= 1 {
			start, _ := versionRange(name)
			ops = append(ops, clientv3.OpDelete(start, clientv3.WithRange(versionKey(name, next-o.keep+1))))
		}
		// The current key guards the whole read: every publish rewrites it,
		// while the version key alone may have been deleted again by
		// retention after another publisher wrote past it.
		resp, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(cur), "=", curRev),
			clientv3.Compare(clientv3.CreateRevision(vk), "=", 0),
		).Then(ops...).Else(clientv3.OpGet(cur, clientv3.WithKeysOnly())).Commit()
		if err != nil {
			return 0, refused(err, name)
		}
		if resp.Succeeded {
			return next, nil
		}
		// Lost the race to another publisher (the current key moved): read
		// again. If the current key did not move, the next version key was
		// written by something other than Publish; that may not end, so
		// give up after a few rounds.
		if r := resp.Responses[0].GetResponseRange(); len(r.Kvs) > 0 && r.Kvs[0].ModRevision == curRev ||
			len(r.Kvs) == 0 && curRev == 0 {
			if stuck++; stuck == maxStuck {
				return 0, fmt.Errorf("%w: gave up after %d attempts: version key %q exists although the current value did not change; something other than Publish writes under %q",
					ErrConflict, maxStuck, vk, name+"/v/")
			}
		}
		if pace == nil {
			pace = retry.New()
		}
		if err := pace.Pause(ctx); err != nil {
			return 0, err
		}
	}
}

// latestVersion returns the highest version number of name (0 if none)
// and the mod revision of its current key (0 if absent), read at one
// revision: the current key first, then the version keys as of that read.
func latestVersion(ctx context.Context, cli *clientv3.Client, name string) (latest, curRev int64, err error) {
	cur, err := cli.Get(ctx, currentKey(name), clientv3.WithKeysOnly())
	if err != nil {
		return 0, 0, refused(err, name)
	}
	if len(cur.Kvs) > 0 {
		curRev = cur.Kvs[0].ModRevision
	}
	kvs, err := versionKVs(ctx, cli, name, 1, cur.Header.Revision, clientv3.WithKeysOnly())
	if err != nil {
		return 0, 0, refused(err, name)
	}
	if len(kvs) == 0 {
		return 0, curRev, nil
	}
	return keyVersion(name, string(kvs[0].Key)), curRev, nil
}

// refused adds [ErrRefused] and what the user lacks to an error that etcd's
// access control returned.
func refused(err error, name string) error {
	if errs.Refused(err) {
		return fmt.Errorf("%w: the client's user needs a role granting read and write on the prefix %q: %w", ErrRefused, name+"/", err)
	}
	return err
}
