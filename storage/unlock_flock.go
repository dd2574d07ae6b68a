//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package storage

import (
	"os"
	"syscall"
)

// unlock releases the flock that bolt.Open took on f. Closing f is not
// enough when bolt.Open panicked: the memory mapping it leaves behind still
// references the file and so keeps the lock.
func unlock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
