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
)

// Write writes data to path atomically and durably: into a temporary file
// in the same directory (created, mode 0700, if need be), which is synced,
// made mode 0644 and renamed into place; then the directory and its parent
// are synced so the new names survive a crash. The rename replaces whatever
// is at path, a symbolic link included, and never writes through it.
func Write(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
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
	return SyncDir(filepath.Dir(dir))
}

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
