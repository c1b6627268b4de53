package config

import (
	"context"
	"errors"
	"fmt"
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
	kvs, err := versionKVs(ctx, w.cli, w.name, startHistory, 0)
	if err == nil {
		for _, kv := range kvs {
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
