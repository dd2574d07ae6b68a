// Package atomicfile writes files that a crash leaves either whole or
// absent: written under a temporary name, synced, renamed into place, and
// the directory synced so that the new name is durable too.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Write writes data to path atomically and durably: into a temporary file
// in the same directory (created, mode 0700, if need be), which is synced,
// made mode 0644 and renamed into place; then the directory and (the first
// time this process writes into it) its parent are synced so the new names
// survive a crash. The rename replaces whatever is at path, a symbolic
// link included, and never writes through it.
func Write(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	mkErr := os.Mkdir(dir, 0o700)
	created := mkErr == nil
	if mkErr != nil && !errors.Is(mkErr, fs.ErrExist) {
		return mkErr
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if err = SyncDir(dir); err != nil {
		return err
	}
	if _, done := parentsSynced.Load(dir); done && !created {
		return nil
	}
	if err = SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	parentsSynced.Store(dir, true)
	return nil
}

// parentsSynced holds the directories whose entry in their parent this
// process has synced since it started, so that Write syncs each parent
// once, not once per file (and again when it creates the directory anew):
// the directory's own entry cannot have become less durable since. Each process syncs for itself, so a directory an
// earlier process made and crashed before syncing is synced again.
var parentsSynced sync.Map

// SyncDir flushes the directory dir, so entries made in it are durable.
// Windows cannot sync a directory and journals renames itself: there it
// does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
