//go:build unix

package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOpenReadOnlyRefusesAPipe: an easel.db that is a named pipe is refused
// at once; bbolt would wait for a writer. One is there, writing garbage, so
// an OpenReadOnly that opened the pipe would fail differently, not hang.
func TestOpenReadOnlyRefusesAPipe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DBFile)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		w, err := os.OpenFile(path, os.O_WRONLY, 0) // waits for a reader
		if err != nil {
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("not a database "), 1000))
		_ = w.Close()
	}()
	_, err := OpenReadOnly(context.Background(), dir, Options{})
	want := "data dir " + dir + ": easel.db is not a valid Easel database (is a named pipe (FIFO), not a regular file)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v\nwant %s…", err, want)
	}

	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-wrote
	_ = r.Close()
}
