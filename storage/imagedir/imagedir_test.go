package imagedir

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/imageref"
)

// webp1x1 is a lossless 1×1 WebP image.
const webp1x1 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="

func TestPutImage(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	data := pngBytes(t, 7, 5, 1)

	ref, err := db.Put(ctx, core.Image{Data: data, MIME: "image/png", Name: "fox.png"})
	if err != nil {
		t.Fatal(err)
	}
	want := core.ImageRef{SHA256: ref.SHA256, MIME: "image/png", Size: int64(len(data)), Width: 7, Height: 5, Name: "fox.png"}
	if ref != want || !imageref.IsHash(ref.SHA256) {
		t.Errorf("ref = %+v, want %+v", ref, want)
	}
	path := db.Locate(ref)
	if wantPath := filepath.Join(db.Path(), ref.SHA256[:2], ref.SHA256+".png"); path != wantPath {
		t.Errorf("Locate = %s, want %s", path, wantPath)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("file content differs from input (err %v)", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o644 {
		t.Errorf("file mode = %v, %v; want 0644", fi.Mode(), err)
	}

	again, err := db.Put(ctx, core.Image{Data: data, MIME: "image/png", Name: "fox.png"})
	if err != nil || again != ref {
		t.Errorf("second PutImage = %+v, %v; want %+v", again, err, ref)
	}
	img, err := db.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.Data, data) || img.MIME != "image/png" || img.Name != "fox.png" {
		t.Errorf("Image = %d bytes %s %q", len(img.Data), img.MIME, img.Name)
	}
	assertNoTempFiles(t, db)
}

func TestPutImageTypes(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	var jpg, gf bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 9, 4)), nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&gf, image.NewPaletted(image.Rect(0, 0, 3, 8), color.Palette{color.Black}), nil); err != nil {
		t.Fatal(err)
	}
	wp, _ := base64.StdEncoding.DecodeString(webp1x1)
	for _, tc := range []struct {
		data          []byte
		label         string // a wrong label is overruled by the bytes
		mime, ext     string
		width, height int
	}{
		{jpg.Bytes(), "image/png", "image/jpeg", ".jpg", 9, 4},
		{gf.Bytes(), "", "image/gif", ".gif", 3, 8},
		{wp, "image/jpeg", "image/webp", ".webp", 1, 1},
		{pngBytes(t, 2, 3, 9), "image/webp", "image/png", ".png", 2, 3},
	} {
		ref, err := db.Put(ctx, core.Image{Data: tc.data, MIME: tc.label})
		if err != nil {
			t.Errorf("%s: %v", tc.mime, err)
			continue
		}
		if ref.MIME != tc.mime || ref.Width != tc.width || ref.Height != tc.height {
			t.Errorf("%s: ref = %+v", tc.mime, ref)
		}
		if !strings.HasSuffix(db.Locate(ref), tc.ext) {
			t.Errorf("%s: path %s, want extension %s", tc.mime, db.Locate(ref), tc.ext)
		}
		if _, err := db.Get(ctx, ref); err != nil {
			t.Errorf("%s: Image: %v", tc.mime, err)
		}
	}
}

func TestPutImageRefused(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	truncated := pngBytes(t, 4, 4, 0)[:20] // a PNG signature and half a header
	for name, data := range map[string][]byte{
		"text":      []byte("hello, not an image"),
		"html":      []byte("<html><body><img src=x></body></html>"),
		"empty":     nil,
		"pdf":       []byte("%PDF-1.7\n"),
		"truncated": truncated,
	} {
		_, err := db.Put(ctx, core.Image{Data: data, MIME: "image/png", Name: name + ".png"})
		if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), name+".png") {
			t.Errorf("%s: err = %v, want an Invalid *core.Error naming the image", name, err)
		}
	}
	entries, _ := os.ReadDir(db.Path())
	if len(entries) != 0 {
		t.Errorf("refused images left %d entries in images/", len(entries))
	}
}

func TestPutImageNameNotInPath(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	db, err := Open(filepath.Join(dir, "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../../etc/passwd", "/etc/passwd", `..\..\x.png`, "a/../../b"} {
		ref, err := db.Put(ctx, core.Image{Data: pngBytes(t, 1, 1, byte(len(name))), Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if ref.Name != name {
			t.Errorf("Name = %q, want %q", ref.Name, name)
		}
		path := db.Locate(ref)
		if rel, err := filepath.Rel(filepath.Join(dir, "images"), path); err != nil || strings.HasPrefix(rel, "..") || strings.Contains(path, "passwd") {
			t.Errorf("name %q stored at %s", name, path)
		}
	}
	// Nothing was written outside images/.
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Dir(filepath.Dir(path)) != filepath.Join(dir, "images") {
			t.Errorf("unexpected file %s", path)
		}
		return nil
	})
}

func TestImageErrors(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	ref, err := db.Put(ctx, core.Image{Data: pngBytes(t, 2, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}

	missing := ref
	missing.SHA256 = strings.Repeat("ab", 32)
	if _, err := db.Get(ctx, missing); core.KindOf(err) != core.NotFound || !strings.Contains(err.Error(), missing.SHA256) {
		t.Errorf("missing image: err = %v, want NotFound naming it", err)
	}
	for _, bad := range []string{"", "../../../etc/passwd", strings.Repeat("AB", 32), strings.Repeat("a", 63)} {
		if db.Locate(core.ImageRef{SHA256: bad}) != "" {
			t.Errorf("Locate(%q) is not empty", bad)
		}
		if _, err := db.Get(ctx, core.ImageRef{SHA256: bad}); core.KindOf(err) != core.NotFound {
			t.Errorf("Image(%q): err = %v, want NotFound", bad, err)
		}
	}

	path := db.Locate(ref)
	if err := os.WriteFile(path, pngBytes(t, 2, 2, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, ref); core.KindOf(err) != core.Internal || !strings.Contains(err.Error(), path) {
		t.Errorf("damaged image: err = %v, want Internal naming %s", err, path)
	}
	// Storing the bytes again repairs a damaged file of the wrong size.
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	orig := pngBytes(t, 2, 2, 3)
	if _, err := db.Put(ctx, core.Image{Data: orig}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, orig) {
		t.Error("PutImage did not rewrite a short file")
	}
}

// assertNoTempFiles fails t if a temporary file is left under images/.
func assertNoTempFiles(t *testing.T, db *Dir) {
	t.Helper()
	_ = filepath.WalkDir(db.Path(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return err
	})
}

// TestImageReadsOnlyItsRecordedSize: a file of another size than its
// record, however large, is refused without being read, and a symbolic link
// is refused even when it leads to the right bytes.
func TestImageReadsOnlyItsRecordedSize(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	data := pngBytes(t, 4, 4, 1)
	ref, err := db.Put(ctx, core.Image{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	path := db.Locate(ref)
	if err := db.Check(ctx, ref); err != nil {
		t.Errorf("Check of a whole image: %v", err)
	}

	// 1 GiB (sparse) starting with the right bytes.
	if err := os.Truncate(path, 1<<30); err != nil {
		t.Fatal(err)
	}
	allocated := allocatedBy(func() { _, err = db.Get(ctx, ref) })
	assertDamaged(t, "a 1 GiB file", err, path, fmt.Sprintf("it is 1073741824 bytes, its record says %d", len(data)))
	if allocated > 64<<10 {
		t.Errorf("refusing a 1 GiB image file allocated %d bytes", allocated)
	}
	assertDamaged(t, "Check of a 1 GiB file", db.Check(ctx, ref), path, "its record says")

	// A link to a copy of the right bytes.
	good := filepath.Join(t.TempDir(), "good.png")
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	replaceWithLink(t, path, good)
	_, err = db.Get(ctx, ref)
	assertDamaged(t, "a link to the right bytes", err, path, "is a symbolic link, not a regular file")
}

// TestPutImageReplacesADamagedFile: PutImage stores the bytes again over a
// file of the right size but the wrong content, and over a symbolic link,
// which it replaces without writing through it.
func TestPutImageReplacesADamagedFile(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	data := pngBytes(t, 4, 4, 1)
	ref, err := db.Put(ctx, core.Image{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	path := db.Locate(ref)
	other := pngBytes(t, 4, 4, 2)
	if len(other) != len(data) {
		t.Fatalf("test images differ in size: %d, %d", len(other), len(data))
	}

	if err := os.WriteFile(path, other, 0o644); err != nil { // same size, other bytes
		t.Fatal(err)
	}
	if _, err := db.Put(ctx, core.Image{Data: data}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Get(ctx, ref); err != nil || !bytes.Equal(got.Data, data) {
		t.Errorf("a damaged file of the right size was kept (err %v)", err)
	}

	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, other, 0o644); err != nil {
		t.Fatal(err)
	}
	replaceWithLink(t, path, victim)
	if _, err := db.Put(ctx, core.Image{Data: data}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the link was kept: %v, %v", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(victim); !bytes.Equal(got, other) {
		t.Error("PutImage wrote through the link")
	}
	if err := db.Check(ctx, ref); err != nil {
		t.Errorf("Check after the repair: %v", err)
	}
	assertNoTempFiles(t, db)
}

// assertDamaged fails t unless err is an *imageref.DamagedError of kind Internal
// naming path, whose message contains why.
func assertDamaged(t *testing.T, what string, err error, path, why string) {
	t.Helper()
	var damaged *imageref.DamagedError
	if !errors.As(err, &damaged) || damaged.Where != path || core.KindOf(err) != core.Internal || !strings.Contains(err.Error(), why) {
		t.Errorf("%s: err = %v; want a DamagedError naming %s, saying %q", what, err, path, why)
	}
}

// replaceWithLink replaces the file at path with a symbolic link to target.
func replaceWithLink(t *testing.T, path, target string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// allocatedBy returns the bytes fn allocated on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// openTest returns a new image directory in a temporary directory.
func openTest(tb testing.TB) *Dir {
	tb.Helper()
	d, err := Open(filepath.Join(tb.TempDir(), "images"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// pngBytes returns a w×h PNG whose pixels depend on seed.
func pngBytes(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)*31 + seed
	}
	img.Set(0, 0, color.NRGBA{seed, seed, seed, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Open makes the directory, private to its owner; ReadOnly touches nothing
// and refuses to store.
func TestOpenAndReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "images")
	ro, err := ReadOnly(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadOnly created %s (%v)", path, err)
	}
	if _, err := ro.Put(context.Background(), core.Image{Data: pngBytes(t, 1, 1, 1)}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Put on a read-only dir: %v", err)
	}
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || d.Path() != path {
		t.Errorf("Open made %v (%v) at %s, want a 0700 directory at %s", fi.Mode(), err, d.Path(), path)
	}
	ref, err := d.Put(context.Background(), core.Image{Data: pngBytes(t, 1, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Get(context.Background(), ref); err != nil {
		t.Errorf("a read-only dir cannot read what was stored: %v", err)
	}
}
