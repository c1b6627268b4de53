package config

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// startHistory is how many of the newest versions [Watch] searches for a
// good value when the current one is refused: enough to step over a few
// bad publishes, few enough to read in one small request.
const startHistory = 10

// startFromGood applies, in place of the current value that was refused
// with cur, the newest good value among the last startHistory versions,
// else the snapshot file's; it returns an error wrapping [ErrInvalid] if
// neither has one.
func (w *Watcher[T]) startFromGood(ctx context.Context, cur error) error {
	start, end := versionRange(w.name)
	resp, err := w.cli.Get(ctx, start, clientv3.WithRange(end),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(startHistory))
	if err == nil {
		for _, kv := range resp.Kvs {
			if keyVersion(w.name, string(kv.Key)) == 0 {
				continue
			}
			rec, derr := decodeRecord(string(kv.Key), kv.Value, kv.ModRevision)
			if derr == nil && rec.Name == w.name && w.apply(rec, true) == nil {
				return nil
			}
		}
	}
	errs := []error{cur}
	if err != nil {
		errs = append(errs, fmt.Errorf("history: %w", refused(err, w.name)))
	}
	if w.o.snapshot != "" {
		serr := w.loadSnapshot()
		if serr == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("snapshot: %w", serr))
	}
	return fmt.Errorf("%w: no good value in the current key, the last %d versions or a snapshot file: %w",
		ErrInvalid, startHistory, errors.Join(errs...))
}
