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

	"github.com/easel-bot/easel/core"
)

// TestImageRefusesDevicesAndPipes: an image file replaced by a link to
// /dev/zero, which would be read until memory ran out, or by a named pipe,
// which would block, is refused at once. The pipe has a writer offering the
// right bytes, so an Image that read it would succeed rather than block.
func TestImageRefusesDevicesAndPipes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), newClock())
	data := pngBytes(t, 4, 4, 1)
	ref, err := db.PutImage(ctx, core.Image{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	path := db.ImagePath(ref)

	replaceWithLink(t, path, "/dev/zero")
	allocated := allocatedBy(func() { _, err = db.Image(ctx, ref) })
	assertDamaged(t, "a link to /dev/zero", err, path, "is a symbolic link, not a regular file")
	if allocated > 64<<10 {
		t.Errorf("refusing a link to /dev/zero allocated %d bytes", allocated)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
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
		_, _ = w.Write(data) // EPIPE once the reader is gone
		_ = w.Close()
	}()
	_, err = db.Image(ctx, ref)
	assertDamaged(t, "a named pipe", err, path, "is a named pipe (FIFO), not a regular file")
	assertDamaged(t, "CheckImage of a named pipe", db.CheckImage(ctx, ref), path, "named pipe")

	// Release the writer if no reader was there when it started waiting.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-wrote
	_ = r.Close()
}

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
