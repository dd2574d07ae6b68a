package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chatSession runs `easel chat` on a new data dir with the prompts, one
// image each, and returns the data dir and the session's id.
func chatSession(t *testing.T, prompts ...string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	out, errOut, code := easel(t, strings.Join(prompts, "\n")+"\n", nil, "chat", "--data", dir)
	if code != 0 || len(imagePaths(out)) != len(prompts) {
		t.Fatalf("chat exited %d:\n%s%s", code, out, errOut)
	}
	return dir, sessionID(t, out)
}

// TestExportIntoASharedDir: in a directory where another user planted
// links to the exporter's files, export refuses to write (the directory is
// not empty) and, with -force, replaces the links instead of writing
// through them. The victims are unchanged either way.
func TestExportIntoASharedDir(t *testing.T) {
	data, id := chatSession(t, "a red fox", "make it blue")

	home := t.TempDir()
	victim := filepath.Join(home, "notes.txt")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	plant(t, victim, filepath.Join(shared, "v1.png"))
	plant(t, filepath.Join(home, "new.html"), filepath.Join(shared, "index.html")) // dangling: would create a file

	_, errOut, code := easel(t, "", nil, "sessions", "export", id, "-o", shared, "-data", data)
	want := `export: ` + shared + ` is not empty (it holds "index.html", "v1.png"): export into a new or empty directory, or add -force`
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("export into a non-empty dir: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	assertVictims(t, victim, home)
	if names := dirNames(t, shared); names != "index.html v1.png" {
		t.Errorf("after a refused export the dir holds %s", names)
	}

	out, errOut, code := easel(t, "", nil, "sessions", "export", id, "-o", shared, "-data", data, "-force")
	if code != 0 || !strings.Contains(out, "exported 2 images") {
		t.Fatalf("export -force: exit %d\n%s%s", code, out, errOut)
	}
	assertVictims(t, victim, home)
	if names := dirNames(t, shared); names != "index.html session.json v1.png v2.png" {
		t.Errorf("after export -force the dir holds %s", names)
	}
	for _, name := range []string{"v1.png", "index.html"} {
		if fi, err := os.Lstat(filepath.Join(shared, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s is not a regular file after export -force: %v %v", name, fi.Mode(), err)
		}
	}
	show, _, _ := easel(t, "", nil, "sessions", "show", id, "-data", data)
	first := imagePaths(show)[0]
	want1, _ := os.ReadFile(first)
	if got, _ := os.ReadFile(filepath.Join(shared, "v1.png")); !bytes.Equal(got, want1) {
		t.Error("v1.png is not the stored image")
	}

	// -force again over its own export: the files are replaced.
	if _, errOut, code := easel(t, "", nil, "sessions", "export", id, "-o", shared, "-data", data, "-force"); code != 0 {
		t.Errorf("a second export -force: exit %d: %s", code, errOut)
	}
	if names := dirNames(t, shared); names != "index.html session.json v1.png v2.png" {
		t.Errorf("after a second export -force the dir holds %s", names)
	}
}

// TestExportDirIsNotALink: an output dir that is a symbolic link, which
// another user could point at the exporter's own directories, is refused in
// both modes.
func TestExportDirIsNotALink(t *testing.T) {
	data, id := chatSession(t, "a red fox")
	home := t.TempDir()
	victim := filepath.Join(home, "notes.txt")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "out")
	plant(t, home, link)
	for _, force := range []string{"-force=false", "-force"} {
		_, errOut, code := easel(t, "", nil, "sessions", "export", id, "-o", link, "-data", data, force)
		want := "export: " + link + " is a symbolic link (to " + home + "): name the directory itself"
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("export %s into a link: exit %d, stderr %q; want exit 1 and %q", force, code, errOut, want)
		}
	}
	assertVictims(t, victim, home)
}

// TestExportDirWriteNeverFollowsALink plants the link after the directory
// was checked, as a racing user would: without -force the file is refused,
// with -force the link is replaced; the victim never changes.
func TestExportDirWriteNeverFollowsALink(t *testing.T) {
	home := t.TempDir()
	victim := filepath.Join(home, "notes.txt")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		shared := filepath.Join(t.TempDir(), "shared")
		d, err := openExportDir(shared, force)
		if err != nil {
			t.Fatal(err)
		}
		plant(t, victim, filepath.Join(shared, "v1.png"))
		err = d.write("v1.png", writeBytes([]byte("image")))
		switch {
		case !force && (err == nil || !strings.Contains(err.Error(), "v1.png appeared in "+shared+" during the export; it was left as it is")):
			t.Errorf("without -force: err = %v", err)
		case force && err != nil:
			t.Errorf("with -force: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(shared, "v1.png")); force && string(got) != "image" {
			t.Errorf("with -force v1.png holds %q", got)
		}
		assertVictims(t, victim, home)
		if names := dirNames(t, shared); names != "v1.png" {
			t.Errorf("force %v: the dir holds %s (a temporary file left?)", force, names)
		}
		d.Close()
	}
}

// plant makes link a symbolic link to target, as another user might.
func plant(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// assertVictims fails t if victim no longer holds "precious" or anything
// else appeared in its directory, home.
func assertVictims(t *testing.T, victim, home string) {
	t.Helper()
	if got, err := os.ReadFile(victim); err != nil || string(got) != "precious" {
		t.Errorf("the victim file now holds %q (%v)", got, err)
	}
	if names := dirNames(t, home); names != filepath.Base(victim) {
		t.Errorf("the victim's directory now holds %s", names)
	}
}

// dirNames returns the names in dir, sorted, separated by spaces.
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return strings.Join(names, " ")
}

// TestMissingImages: with v2's image file deleted and v3's damaged, `show`
// flags both beside their versions, and `export` writes everything else,
// names each skipped file on stderr and exits 1.
func TestMissingImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, errOut, code := easel(t, "a red fox\nmake it blue\nmake it green\n", nil, "chat", "--data", dir)
	paths := imagePaths(out)
	if code != 0 || len(paths) != 3 {
		t.Fatalf("chat exited %d:\n%s%s", code, out, errOut)
	}
	id := sessionID(t, out)
	if err := os.Remove(paths[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths[2], []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}

	show, errOut, code := easel(t, "", nil, "sessions", "show", id, "-data", dir)
	if code != 0 {
		t.Fatalf("show exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"\n   " + paths[0] + "\n",
		paths[1] + "  ⚠ image missing\n",
		paths[2] + "  ⚠ image damaged\n",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	exportDir := filepath.Join(t.TempDir(), "export")
	out, errOut, code = easel(t, "", nil, "sessions", "export", id, "-o", exportDir, "-data", dir)
	if code != 1 {
		t.Errorf("export with missing images exited %d, want 1", code)
	}
	if want := "exported 1 of 3 images of session " + id + " to " + exportDir + "\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	wantErr := "easel sessions: v2.png not exported: image missing: nothing at " + paths[1] + "\n" +
		"easel sessions: v3.png not exported: image damaged: " + paths[2] + ": it is 5 bytes, its record says "
	if !strings.HasPrefix(errOut, wantErr) || !strings.Contains(errOut, "\neasel sessions: export of session "+id+" is incomplete: v2.png, v3.png not exported") {
		t.Errorf("stderr:\n%s\nwant it to start with:\n%s", errOut, wantErr)
	}
	if names := dirNames(t, exportDir); names != "index.html session.json v1.png" {
		t.Errorf("the export holds %s", names)
	}
	page, _ := os.ReadFile(filepath.Join(exportDir, "index.html"))
	for _, want := range []string{`<img src="v1.png"`, "v2: image missing", "v3: image damaged"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	record, _ := os.ReadFile(filepath.Join(exportDir, "session.json"))
	if !strings.Contains(string(record), "make it green") {
		t.Error("session.json lacks v3's turn")
	}
}

func TestExportSkipsDeletedVersions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, errOut, code := easel(t, "a red fox\nmake it blue\n/delete v2\n", nil, "chat", "--data", dir)
	if code != 0 || !strings.Contains(out, "🗑️ v2 deleted by") {
		t.Fatalf("chat exited %d:\n%s%s", code, out, errOut)
	}
	id := sessionID(t, out)
	exportDir := filepath.Join(t.TempDir(), "export")
	out, errOut, code = easel(t, "", nil, "sessions", "export", id, "-o", exportDir, "-data", dir)
	if code != 0 || out != "exported 1 images of session "+id+" to "+exportDir+"\n" || errOut != "easel sessions: v2 not exported: it was deleted\n" {
		t.Errorf("export exited %d: stdout %q, stderr %q", code, out, errOut)
	}
	if names := dirNames(t, exportDir); names != "index.html session.json v1.png" {
		t.Errorf("the export holds %s", names)
	}
	if page, _ := os.ReadFile(filepath.Join(exportDir, "index.html")); !strings.Contains(string(page), "v2: deleted") {
		t.Error("index.html does not say v2 was deleted")
	}
}
