//go:build unix

package config

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLoadRefusesDevices: /dev/zero, which would be read forever, is
// refused at once, naming it.
func TestLoadRefusesDevices(t *testing.T) {
	link := filepath.Join(t.TempDir(), "easel.toml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dev/zero", link} {
		_, err := Load(path, env(nil))
		if want := "config: open " + path + ": is a character device, not a regular file"; err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
	}
}

// TestLoadRefusesFIFOs: a named pipe is refused without waiting for a
// writer. A writer is there all the same, offering a valid config, so a Load
// that opened the pipe and read it would succeed instead of blocking.
func TestLoadRefusesFIFOs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "easel.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for a reader
		if err != nil {
			return
		}
		_, _ = io.WriteString(w, "[storage]\ndir = \"/data\"\n") // EPIPE once the reader is gone
		_ = w.Close()
	}()

	_, err := Load(fifo, env(nil))
	if want := "config: open " + fifo + ": is a named pipe (FIFO), not a regular file"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}

	// Release the writer if Load's non-blocking open came and went before
	// it started waiting.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-wrote
	_ = r.Close()
}
