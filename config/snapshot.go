package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeSnapshot replaces the file at path with data atomically: readers see
// the old file or the new one, never a part.
func writeSnapshot(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// loadSnapshot applies the value in the snapshot file, if it is one of
// w's name that decodes and validates.
func (w *Watcher[T]) loadSnapshot() error {
	raw, err := os.ReadFile(w.o.snapshot)
	if err != nil {
		return err
	}
	rec, err := decodeRecord(w.o.snapshot, raw, 0)
	if err != nil {
		return err
	}
	if rec.Name != w.name {
		return fmt.Errorf("%w: file %q holds a snapshot of %q", ErrMalformed, w.o.snapshot, rec.Name)
	}
	return w.apply(rec, false)
}
