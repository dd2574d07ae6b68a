package coretest

import (
	"path/filepath"
	"testing"

	"github.com/easel-bot/easel/storage/imagedir"
)

// ImageDir returns the image store of the data dir dir (its images/
// directory, as easel wires it), or of a new temporary directory when dir
// is "", for engines under test.
func ImageDir(tb testing.TB, dir string) *imagedir.Dir {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	images, err := imagedir.Open(filepath.Join(dir, "images"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return images
}
