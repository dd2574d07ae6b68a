//go:build !linux

package storage

import "os"

// fdatasync makes f durable: fsync, where there is no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
