//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package storage

import "os"

// unlock does nothing: bbolt locks the file some other way here, and closing
// f has to do.
func unlock(*os.File) {}
