package regfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	if err := os.WriteFile(exact, bytes.Repeat([]byte("x"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(exact, 1000); err != nil || len(data) != 1000 {
		t.Errorf("a file of exactly the limit: %d bytes, %v", len(data), err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(exact, link); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(link, 1000); err != nil || len(data) != 1000 {
		t.Errorf("a link to a regular file is followed: %d bytes, %v", len(data), err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestReadFileRefusesLargeFilesUnread(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(200 << 20); err != nil { // sparse: 200 MiB that cost no disk
		t.Fatal(err)
	}
	f.Close()
	allocated := allocatedBy(func() {
		_, err = ReadFile(big, 1<<20)
	})
	var tooLarge *TooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 200<<20 || err.Error() != "read "+big+": is 200.0 MiB, over the limit of 1.0 MiB" {
		t.Errorf("err = %v, want a TooLargeError", err)
	}
	if allocated > 64<<10 {
		t.Errorf("refusing a 200 MiB file allocated %d bytes", allocated)
	}
}

// allocatedBy returns the bytes fn allocated on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
