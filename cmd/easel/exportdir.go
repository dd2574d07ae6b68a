package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// exportDir is the directory `easel sessions export` writes into, which may
// be shared with other users: none of them can make the export write
// through a symbolic link, or replace a file the exporter did not ask to
// replace.
type exportDir struct {
	root  *os.Root // the directory, held open: renaming or replacing its path later changes nothing
	name  string   // as the user gave it, for messages
	force bool
}

// openExportDir opens dir for an export, creating it (and its parents) if
// it does not exist. An existing dir must be a directory, not a symbolic
// link to one, and, unless force, empty.
func openExportDir(dir string, force bool) (*exportDir, error) {
	path := filepath.Clean(dir) // "out/" would make Lstat follow a link
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("%s is a symbolic link (to %s): name the directory itself", dir, target)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	d := &exportDir{root: root, name: dir, force: force}
	if err := d.check(fi); err != nil {
		_ = root.Close()
		return nil, err
	}
	return d, nil
}

// check makes sure the directory opened is the one Lstat saw (not a link
// put in its place meanwhile) and, unless d.force, that it is empty.
func (d *exportDir) check(seen fs.FileInfo) error {
	opened, err := d.root.Stat(".")
	if err != nil {
		return err
	}
	if !os.SameFile(seen, opened) {
		return fmt.Errorf("%s was replaced while it was opened; try again", d.name)
	}
	if d.force {
		return nil
	}
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty (it holds %s): export into a new or empty directory, or add -force to replace the files of the same names there", d.name, listNames(names))
	}
	return nil
}

// listNames returns up to three of names, sorted, quoted and joined,
// ending with … if there are more.
func listNames(names []string) string {
	slices.Sort(names)
	var quoted []string
	for _, n := range names[:min(len(names), 3)] {
		quoted = append(quoted, fmt.Sprintf("%q", n))
	}
	if len(names) > 3 {
		quoted = append(quoted, "…")
	}
	return strings.Join(quoted, ", ")
}

// write creates the file name in the directory and fills it with fill. It
// never follows a symbolic link. Without d.force a file already there,
// link or not, is an error and stays as it was; with d.force the new file is
// written under a temporary name and renamed over it, which replaces a link
// rather than writing through it. A file that fails is removed.
func (d *exportDir) write(name string, fill func(io.Writer) error) error {
	if !d.force {
		f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared in %s during the export; it was left as it is", name, d.name)
		}
		if err != nil {
			return err
		}
		return d.finish(f, name, fill)
	}
	tmp := ".easel-export-" + rand.Text()
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := d.finish(f, tmp, fill); err != nil {
		return err
	}
	if err := d.root.Rename(tmp, name); err != nil {
		_ = d.root.Remove(tmp)
		return err
	}
	return nil
}

// finish fills f, the file name in the directory, and closes it, removing
// it if either fails.
func (d *exportDir) finish(f *os.File, name string, fill func(io.Writer) error) error {
	err := fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = d.root.Remove(name)
	}
	return err
}

// Close releases the directory.
func (d *exportDir) Close() error { return d.root.Close() }
