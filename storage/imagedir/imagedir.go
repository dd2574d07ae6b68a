// Package imagedir keeps image bytes in a local directory, one file per
// distinct image named by its SHA-256: <dir>/<first 2 hex digits>/<sha256
// hex><ext>. It implements core.ImageStore. Image bytes never go into the
// session database (bbolt files never shrink), and a file is written under a
// temporary name, synced and renamed, so a crash leaves it whole or absent.
package imagedir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/internal/atomicfile"
	"github.com/easel-bot/easel/internal/regfile"
	"github.com/easel-bot/easel/storage/imageref"
)

// Dir is a directory of image files. Its methods may be called from many
// goroutines, and from several processes on the same directory.
type Dir struct {
	dir      string
	log      *slog.Logger
	readOnly bool
}

// Dir is Easel's local image store.
var _ core.ImageStore = (*Dir)(nil)

// Open returns the image directory dir (made absolute: paths are shown to
// people), creating it with mode 0700 if it does not exist and making its
// entry durable. log, if not nil, receives notes about odd inputs.
func Open(dir string, log *slog.Logger) (*Dir, error) {
	d, err := ReadOnly(dir, log)
	if err != nil {
		return nil, err
	}
	d.readOnly = false
	if _, err := os.Stat(d.dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return nil, fmt.Errorf("image dir %s: %w", d.dir, err)
		}
		if err := atomicfile.SyncDir(filepath.Dir(d.dir)); err != nil {
			return nil, fmt.Errorf("image dir %s: %w", d.dir, err)
		}
	}
	return d, nil
}

// ReadOnly returns the image directory dir for reading: it touches nothing
// on disk, and Put fails.
func ReadOnly(dir string, log *slog.Logger) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image dir %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dir{dir: abs, log: log, readOnly: true}, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.dir }

// Put stores img's bytes in a file named by their SHA-256 and returns
// their reference. The media type is sniffed from the bytes; img.MIME is
// only a hint. PNG, JPEG, GIF and WebP are accepted: other bytes, or bytes
// of those types whose header cannot be read, get an Invalid *core.Error.
// img.Name is kept in the reference for display and is never part of a path.
//
// The file is written under a temporary name, synced, renamed into place and
// its directory synced before Put returns. Bytes already stored, in a file
// that passes Check, cost two hashes and a read, and get the same
// reference; a damaged file is replaced.
func (d *Dir) Put(ctx context.Context, img core.Image) (core.ImageRef, error) {
	if err := ctx.Err(); err != nil {
		return core.ImageRef{}, err
	}
	if d.readOnly {
		return core.ImageRef{}, fmt.Errorf("imagedir: %s is open read-only", d.dir)
	}
	ref, err := imageref.Describe(img)
	if err != nil {
		return core.ImageRef{}, err
	}
	if img.MIME != "" && img.MIME != ref.MIME {
		d.log.Debug("imagedir: image type differs from its label", "label", img.MIME, "sniffed", ref.MIME, "sha256", ref.SHA256)
	}
	path := d.Locate(ref)
	if d.Check(ctx, ref) == nil {
		return ref, nil
	}
	// Missing or damaged: write it anew. The rename replaces whatever is
	// at path, a symbolic link included, and never writes through it.
	if err := atomicfile.Write(path, img.Data); err != nil {
		return core.ImageRef{}, fmt.Errorf("imagedir: store image %s: %w", ref.SHA256, err)
	}
	return ref, nil
}

// Get returns the bytes of ref, with ref's MIME and Name. It reads no more
// than ref.Size+1 bytes of the file, and none from one that is not a
// regular file of ref.Size bytes. It returns a NotFound *core.Error when no
// file holds the bytes, and a *imageref.DamagedError when the file is not what
// ref records: a symbolic link, a named pipe, a device or anything else but a
// regular file, of another size, or with content whose SHA-256 differs.
func (d *Dir) Get(ctx context.Context, ref core.ImageRef) (core.Image, error) {
	if err := ctx.Err(); err != nil {
		return core.Image{}, err
	}
	f, path, err := d.open(ref)
	if err != nil {
		return core.Image{}, err
	}
	defer f.Close()
	buf := bytes.NewBuffer(make([]byte, 0, ref.Size+1)) // +1: room to find a file that grew
	if err := readImage(f, path, ref, buf); err != nil {
		return core.Image{}, err
	}
	return core.Image{Data: buf.Bytes(), MIME: ref.MIME, Name: ref.Name}, nil
}

// Check reads the file of ref's bytes as Get does, without keeping them,
// and returns the error Get would return, or nil when the file is whole.
func (d *Dir) Check(ctx context.Context, ref core.ImageRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, path, err := d.open(ref)
	if err != nil {
		return err
	}
	defer f.Close()
	return readImage(f, path, ref, io.Discard)
}

// open opens the file of ref's bytes, without following a symbolic
// link or waiting on a named pipe, and checks that it is a regular file of
// ref.Size bytes. It returns the file and its path.
func (d *Dir) open(ref core.ImageRef) (*os.File, string, error) {
	path := d.Locate(ref)
	if path == "" {
		return nil, "", core.Errorf(core.NotFound, "image %q not found", ref.SHA256)
	}
	f, fi, err := regfile.OpenNoFollow(path)
	var notRegular *regfile.NotRegularError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", core.Errorf(core.NotFound, "image %s not found", ref.SHA256)
	case errors.As(err, &notRegular):
		return nil, "", &imageref.DamagedError{Where: path, Err: notRegular}
	case err != nil:
		return nil, "", fmt.Errorf("imagedir: read image: %w", err)
	case fi.Size() != ref.Size:
		_ = f.Close()
		return nil, "", &imageref.DamagedError{Where: path, Err: fmt.Errorf("it is %d bytes, its record says %d", fi.Size(), ref.Size)}
	}
	return f, path, nil
}

// readImage copies the bytes of f, the image file at path, to w, and checks
// that they are ref.Size bytes whose SHA-256 is ref's. It reads at most
// ref.Size+1 bytes.
func readImage(f *os.File, path string, ref core.ImageRef, w io.Writer) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(f, ref.Size+1))
	switch {
	case err != nil:
		return fmt.Errorf("imagedir: read image %s: %w", path, err)
	case n < ref.Size:
		return &imageref.DamagedError{Where: path, Err: fmt.Errorf("it was cut short while it was read: %d bytes, its record says %d", n, ref.Size)}
	case n > ref.Size:
		return &imageref.DamagedError{Where: path, Err: fmt.Errorf("it grew while it was read, past the %d bytes its record says", ref.Size)}
	case hex.EncodeToString(h.Sum(nil)) != ref.SHA256:
		return &imageref.DamagedError{Where: path, Err: errors.New("its content does not match its SHA-256")}
	}
	return nil
}

// Remove deletes the file of ref's bytes; bytes already gone are no
// error.
func (d *Dir) Remove(ctx context.Context, ref core.ImageRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.readOnly {
		return fmt.Errorf("imagedir: %s is open read-only", d.dir)
	}
	path := d.Locate(ref)
	if path == "" {
		return core.Errorf(core.Invalid, "image %q is no image reference", ref.SHA256)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("imagedir: remove image %s: %w", ref.SHA256, err)
	}
	return nil
}

// Locate returns the file path of ref's bytes: <dir>/<first 2 hex
// digits>/<sha256 hex><ext>. It returns "" when ref.SHA256 is not 64
// lower-case hex digits.
func (d *Dir) Locate(ref core.ImageRef) string {
	key := imageref.Key(ref)
	if key == "" {
		return ""
	}
	return filepath.Join(d.dir, filepath.FromSlash(key))
}
