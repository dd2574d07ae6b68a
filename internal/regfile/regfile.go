// Package regfile opens and reads files that must be regular files. A named
// pipe, a device, a socket or a directory in a regular file's place is
// refused before a byte is read from it, and opening one never blocks (on
// Unix, where files are opened non-blocking). Reads are bounded: a file over
// its limit is refused, not read to the end.
package regfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// NotRegularError is what is in place of a regular file. Open, OpenNoFollow
// and ReadFile return it inside an *fs.PathError naming the file.
type NotRegularError struct {
	Mode fs.FileMode
}

// Error says what the file is, such as "is a named pipe (FIFO), not a
// regular file".
func (e *NotRegularError) Error() string {
	var what string
	switch m := e.Mode; {
	case m&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	default:
		what = "an irregular file"
	}
	return "is " + what + ", not a regular file"
}

// TooLargeError is a file longer than the limit its reader set. ReadFile
// returns it inside an *fs.PathError naming the file.
type TooLargeError struct {
	// Size is the file's size, or -1 when it grew past Limit while it was
	// read.
	Size, Limit int64
}

// Error says how large the file is and what the limit is.
func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("grew past the limit of %s while it was read", formatSize(e.Limit))
	}
	return fmt.Sprintf("is %s, over the limit of %s", formatSize(e.Size), formatSize(e.Limit))
}

// Open opens the regular file name for reading, following symbolic links,
// and returns it with its FileInfo. Anything else in its place gets an
// *fs.PathError wrapping a *NotRegularError; errors from the file system are
// returned as they are (errors.Is(err, fs.ErrNotExist) for a missing file).
func Open(name string) (*os.File, fs.FileInfo, error) {
	return open(name, true)
}

// OpenNoFollow is Open, except that a symbolic link as name's last element
// is refused (a *NotRegularError whose Mode has fs.ModeSymlink) instead of
// followed. Links among the directories leading to it are followed.
func OpenNoFollow(name string) (*os.File, fs.FileInfo, error) {
	return open(name, false)
}

// ReadFile returns the contents of the regular file name, following
// symbolic links, as Open does. A file of more than limit bytes gets an
// *fs.PathError wrapping a *TooLargeError; no more than limit+1 bytes of it
// are read, and none when its size already says it is too large.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, fi, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: &TooLargeError{Size: fi.Size(), Limit: limit}}
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead) // room to see EOF without growing
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(buf.Len()) > limit { // it grew since Stat
		return nil, &fs.PathError{Op: "read", Path: name, Err: &TooLargeError{Size: -1, Limit: limit}}
	}
	return buf.Bytes(), nil
}

// open opens name read-only and non-blocking (where the system allows),
// refusing what is not a regular file and, unless follow, a symbolic link.
func open(name string, follow bool) (*os.File, fs.FileInfo, error) {
	flag := os.O_RDONLY | nonBlock
	if !follow {
		flag |= noFollow
		if noFollow == 0 { // no O_NOFOLLOW here: look first
			if fi, err := os.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil, nil, notRegular(name, fi.Mode())
			}
		}
	}
	f, err := os.OpenFile(name, flag, 0)
	if err != nil {
		if !follow { // O_NOFOLLOW fails on a link with ELOOP or, on some systems, EMLINK
			if fi, lerr := os.Lstat(name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil, nil, notRegular(name, fi.Mode())
			}
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, notRegular(name, fi.Mode())
	}
	return f, fi, nil
}

func notRegular(name string, mode fs.FileMode) error {
	return &fs.PathError{Op: "open", Path: name, Err: &NotRegularError{Mode: mode}}
}

// formatSize returns n bytes in the largest binary unit it reaches, such as
// "200.0 MiB" or "12 bytes".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
