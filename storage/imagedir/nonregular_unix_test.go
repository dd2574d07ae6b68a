//go:build unix

package imagedir

import (
	"context"
	"os"
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
	db := openTest(t)
	data := pngBytes(t, 4, 4, 1)
	ref, err := db.Put(ctx, core.Image{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	path := db.Locate(ref)

	replaceWithLink(t, path, "/dev/zero")
	allocated := allocatedBy(func() { _, err = db.Get(ctx, ref) })
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
	_, err = db.Get(ctx, ref)
	assertDamaged(t, "a named pipe", err, path, "is a named pipe (FIFO), not a regular file")
	assertDamaged(t, "Check of a named pipe", db.Check(ctx, ref), path, "named pipe")

	// Release the writer if no reader was there when it started waiting.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-wrote
	_ = r.Close()
}
