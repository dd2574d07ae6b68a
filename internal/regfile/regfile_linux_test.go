package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileStopsAtTheLimit reads a file whose size says nothing of its
// content, as files in /proc do.
func TestReadFileStopsAtTheLimit(t *testing.T) {
	_, err := ReadFile("/proc/self/maps", 10)
	var tooLarge *TooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != -1 || !strings.Contains(err.Error(), "grew past the limit of 10 bytes") {
		t.Errorf("err = %v, want a TooLargeError for a file that grew", err)
	}
}

func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	zeroLink := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zeroLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		open func(string) (*os.File, fs.FileInfo, error)
		path string
		is   string
	}{
		{"fifo", Open, fifo, "a named pipe (FIFO)"},         // would block in open(2) without O_NONBLOCK
		{"device", Open, "/dev/zero", "a character device"}, // would be read forever
		{"link to a device", Open, zeroLink, "a character device"},
		{"directory", Open, dir, "a directory"},
		{"fifo, no follow", OpenNoFollow, fifo, "a named pipe (FIFO)"},
		{"link, no follow", OpenNoFollow, link, "a symbolic link"},
		{"link to a device, no follow", OpenNoFollow, zeroLink, "a symbolic link"},
	} {
		f, _, err := tc.open(tc.path)
		if f != nil {
			f.Close()
		}
		var nr *NotRegularError
		want := "open " + tc.path + ": is " + tc.is + ", not a regular file"
		if !errors.As(err, &nr) || err.Error() != want {
			t.Errorf("%s: err = %v\nwant %s", tc.name, err, want)
		}
	}
	if _, err := ReadFile(fifo, 10); err == nil || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("ReadFile of a FIFO: err = %v", err)
	}
	f, fi, err := OpenNoFollow(target)
	if err != nil || fi.Size() != 1 {
		t.Fatalf("OpenNoFollow of a regular file: %v", err)
	}
	f.Close()
}
