//go:build linux

// Package fulldisk gives tests a small file system of their own to fill,
// so that what Easel does when a write finds no space left can be tested
// without filling the machine's disk.
package fulldisk

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Small mounts a tmpfs of size (such as "4m") on a new temporary directory
// for the rest of the test and returns the directory. Mounting needs root:
// see AsRoot.
func Small(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// Fill writes a file in dir until the file system has no space left, and
// returns its path; removing it frees the space again.
func Fill(t testing.TB, dir string) string {
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

// AsRoot makes a test that mounts file systems work without root: when the
// test process is not root, it runs the test again as root of new user and
// mount namespaces (unshare(1)) and reports true, and the caller returns;
// as root it reports false.
func AsRoot(t *testing.T) bool {
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
