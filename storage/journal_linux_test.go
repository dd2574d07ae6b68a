package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A full disk fails the Receive whose record does not fit, with an error
// that says so, and cuts the journal back to its last good record: the
// next record that fits is journaled after it, and a replay finds exactly
// the deliveries acknowledged. The delivery that failed is not taken as a
// duplicate when the platform sends it again.
func TestReceiveOnAFullDisk(t *testing.T) {
	if rerunAsRoot(t) {
		return
	}
	ctx := context.Background()
	dir := filepath.Join(smallDisk(t, "1m"), "data")
	db := openTest(t, dir, newClock())
	path := filepath.Join(dir, journalFile)
	release := holdCommits(t, db)
	defer func() {
		if release != nil {
			release()
		}
	}()
	receive(t, db, "a", time.Hour)
	good := journalSize(t, dir)
	filler := fillDisk(t, filepath.Dir(dir))

	// Past the journal's first page, which is allocated: a short write.
	big := []byte(`{"text":"` + strings.Repeat("x", 3*4096) + `"}`)
	first, err := db.Receive(ctx, "b", "event", big, time.Hour)
	if first || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "storage: receive b: write inbox journal "+path+": ") {
		t.Fatalf("Receive on a full disk = %v, %v; want ENOSPC naming the journal", first, err)
	}
	if n := journalSize(t, dir); n != good {
		t.Errorf("the journal is %d bytes after the failed append, want %d (its last good record's end)", n, good)
	}
	receive(t, db, "c", time.Hour) // fits in the allocated page
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := scanJournal(b, 0); len(s.recs) != 2 || s.recs[0].key != "a" || s.recs[1].key != "c" || s.tail != tailNone {
		t.Errorf("the journal holds %d records, tail %d; want a and c, whole", len(s.recs), s.tail)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	release()
	release = nil
	flushed(t, db)
	if got := unhandled(t, db); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Unhandled = %v, want [a c]", got)
	}
	receive(t, db, "b", time.Hour) // the platform's retry
}

// smallDisk mounts a tmpfs of size (such as "4m") on a new temporary
// directory for the rest of the test and returns the directory.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file in dir until the file system has no space left, and
// returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// rerunAsRoot makes a test that mounts file systems work without root:
// when the test process is not root, it runs the test again as root of new
// user and mount namespaces (unshare(1)) and reports true, and the caller
// returns; as root it reports false.
func rerunAsRoot(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return false
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount",
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s needs to mount a tmpfs: as root, or in a user namespace (unshare -rm), which failed: %v\n%s", t.Name(), err, out)
	}
	t.Logf("ran as root of a user namespace:\n%s", out)
	return true
}
