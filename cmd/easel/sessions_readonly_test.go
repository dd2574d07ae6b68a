package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel-bot/easel/storage"
)

// TestReadOnlyCommandsChangeNothing runs the commands that only read on a
// data dir made read-only, while another reader holds easel.db with a
// shared lock, as a second `easel usage` would. A command that opened the
// database for writing would wait for that lock and fail (also as root,
// whom file modes do not stop); the read-only ones all succeed, and nothing
// in the data dir is created, changed or touched.
func TestReadOnlyCommandsChangeNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, errOut, code := easel(t, "a red fox\nmake it blue\n", nil, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	id := sessionID(t, out)
	cfgFile := filepath.Join(t.TempDir(), "easel.toml")
	if err := os.WriteFile(cfgFile, []byte("[storage]\nopen_timeout = \"200ms\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	makeReadOnly(t, dir)
	before := fileStates(t, dir)
	reader, err := storage.OpenReadOnly(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	exportDir := filepath.Join(t.TempDir(), "export")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions", "list"}, id},
		{[]string{"sessions", "show", id}, "make it blue"},
		{[]string{"sessions", "show", id, "-json"}, `"id": "` + id + `"`},
		{[]string{"sessions", "export", id, "-o", exportDir}, "exported 2 images"},
		{[]string{"usage"}, "console/"},
	} {
		args := append(tc.args, "-data", dir, "-config", cfgFile)
		out, errOut, code := easel(t, "", nil, args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("easel %s: exit %d, stdout lacks %q\n%s%s", strings.Join(tc.args, " "), code, tc.want, out, errOut)
		}
	}
	if after := fileStates(t, dir); after != before {
		t.Errorf("the data dir changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestReadOnlyCommandsRefuseAMissingDataDir: a mistyped -data is named in
// the error and not created.
func TestReadOnlyCommandsRefuseAMissingDataDir(t *testing.T) {
	typo := filepath.Join(t.TempDir(), "easel-dta")
	for _, args := range [][]string{
		{"sessions", "list"},
		{"sessions", "show", "s1"},
		{"sessions", "export", "s1", "-o", filepath.Join(t.TempDir(), "export")},
		{"usage"},
	} {
		_, errOut, code := easel(t, "", nil, append(args, "-data", typo)...)
		want := "data dir " + typo + " does not exist; only easel chat and easel run create one"
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("easel %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(args, " "), code, errOut, want)
		}
		if _, err := os.Stat(typo); !os.IsNotExist(err) {
			t.Fatalf("easel %s created %s", strings.Join(args, " "), typo)
		}
	}
}

// makeReadOnly takes write permission away from everything under dir, and
// gives it back when the test ends so the directory can be removed.
func makeReadOnly(t *testing.T, dir string) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		paths = append(paths, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		mode := fi.Mode().Perm()
		if err := os.Chmod(p, mode&^0o222); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(p, mode) })
	}
}

// fileStates describes every file and directory under dir: mode, size,
// modification time and, for files, content hash, one per line.
func fileStates(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %s", path, fi.Mode(), fi.Size(), fi.ModTime().Format("15:04:05.000000000"))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
