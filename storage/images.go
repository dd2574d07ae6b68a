package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/internal/regfile"
)

// imageTypes maps each media type PutImage accepts to its header decoder.
var imageTypes = map[string]func(io.Reader) (image.Config, error){
	"image/png":  png.DecodeConfig,
	"image/jpeg": jpeg.DecodeConfig,
	"image/gif":  gif.DecodeConfig,
	"image/webp": webp.DecodeConfig,
}

// PutImage stores img's bytes in a file named by their SHA-256 and returns
// their reference. The media type is sniffed from the bytes; img.MIME is
// only a hint. PNG, JPEG, GIF and WebP are accepted: other bytes, or bytes
// of those types whose header cannot be read, get an Invalid *core.Error.
// img.Name is kept in the reference for display and is never part of a path.
//
// The file is written under a temporary name, synced, renamed into place and
// its directory synced before PutImage returns. Bytes already stored, in a
// file that passes CheckImage, cost two hashes and a read, and get the same
// reference; a damaged file is replaced.
func (db *DB) PutImage(ctx context.Context, img core.Image) (core.ImageRef, error) {
	if err := ctx.Err(); err != nil {
		return core.ImageRef{}, err
	}
	ref, err := describe(img)
	if err != nil {
		return core.ImageRef{}, err
	}
	if img.MIME != "" && img.MIME != ref.MIME {
		db.log.Debug("storage: image type differs from its label", "label", img.MIME, "sniffed", ref.MIME, "sha256", ref.SHA256)
	}
	path := db.ImagePath(ref)
	if db.CheckImage(ctx, ref) == nil {
		return ref, nil
	}
	// Missing or damaged: write it anew. The rename replaces whatever is
	// at path, a symbolic link included, and never writes through it.
	if err := writeFile(path, img.Data); err != nil {
		return core.ImageRef{}, fmt.Errorf("storage: store image %s: %w", ref.SHA256, err)
	}
	return ref, nil
}

// DamagedImageError is a stored image file that is not what its reference
// records. Image and CheckImage return it; its kind (core.KindOf) is
// Internal.
type DamagedImageError struct {
	Path string // the file
	Err  error  // what is wrong with it
}

// Error names the file and says what is wrong with it.
func (e *DamagedImageError) Error() string {
	return fmt.Sprintf("image file %s is damaged: %v", e.Path, e.Err)
}

// Unwrap returns what is wrong with the file, such as a
// *regfile.NotRegularError.
func (e *DamagedImageError) Unwrap() error { return e.Err }

// Image returns the bytes of ref, with ref's MIME and Name. It reads no more
// than ref.Size+1 bytes of the file, and none from one that is not a
// regular file of ref.Size bytes. It returns a NotFound *core.Error when no
// file holds the bytes, and a *DamagedImageError when the file is not what
// ref records: a symbolic link, a named pipe, a device or anything else but a
// regular file, of another size, or with content whose SHA-256 differs.
func (db *DB) Image(ctx context.Context, ref core.ImageRef) (core.Image, error) {
	if err := ctx.Err(); err != nil {
		return core.Image{}, err
	}
	f, path, err := db.openImage(ref)
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

// CheckImage reads the file of ref's bytes as Image does, without keeping
// them, and returns the error Image would return, or nil when the file is
// whole.
func (db *DB) CheckImage(ctx context.Context, ref core.ImageRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, path, err := db.openImage(ref)
	if err != nil {
		return err
	}
	defer f.Close()
	return readImage(f, path, ref, io.Discard)
}

// openImage opens the file of ref's bytes, without following a symbolic
// link or waiting on a named pipe, and checks that it is a regular file of
// ref.Size bytes. It returns the file and its path.
func (db *DB) openImage(ref core.ImageRef) (*os.File, string, error) {
	path := db.ImagePath(ref)
	if path == "" {
		return nil, "", core.Errorf(core.NotFound, "image %q not found", ref.SHA256)
	}
	f, fi, err := regfile.OpenNoFollow(path)
	var notRegular *regfile.NotRegularError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "", core.Errorf(core.NotFound, "image %s not found", ref.SHA256)
	case errors.As(err, &notRegular):
		return nil, "", &DamagedImageError{Path: path, Err: notRegular}
	case err != nil:
		return nil, "", fmt.Errorf("storage: read image: %w", err)
	case fi.Size() != ref.Size:
		_ = f.Close()
		return nil, "", &DamagedImageError{Path: path, Err: fmt.Errorf("it is %d bytes, its record says %d", fi.Size(), ref.Size)}
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
		return fmt.Errorf("storage: read image %s: %w", path, err)
	case n < ref.Size:
		return &DamagedImageError{Path: path, Err: fmt.Errorf("it was cut short while it was read: %d bytes, its record says %d", n, ref.Size)}
	case n > ref.Size:
		return &DamagedImageError{Path: path, Err: fmt.Errorf("it grew while it was read, past the %d bytes its record says", ref.Size)}
	case hex.EncodeToString(h.Sum(nil)) != ref.SHA256:
		return &DamagedImageError{Path: path, Err: errors.New("its content does not match its SHA-256")}
	}
	return nil
}

// ImagePath returns the local file path of ref's bytes:
// <data dir>/images/<first 2 hex digits>/<sha256 hex><ext>. It returns ""
// when ref.SHA256 is not 64 lower-case hex digits.
func (db *DB) ImagePath(ref core.ImageRef) string {
	if !isHash(ref.SHA256) {
		return ""
	}
	return filepath.Join(db.images, ref.SHA256[:2], ref.SHA256+core.ExtForMIME(ref.MIME))
}

// describe returns the reference of img's bytes, or an Invalid *core.Error
// when they are not an image PutImage accepts.
func describe(img core.Image) (core.ImageRef, error) {
	what := "the image"
	if img.Name != "" {
		what = fmt.Sprintf("%q", img.Name)
	}
	mime := http.DetectContentType(img.Data)
	decodeConfig, ok := imageTypes[mime]
	if !ok {
		return core.ImageRef{}, core.Errorf(core.Invalid, "%s is not a PNG, JPEG, GIF or WebP image", what)
	}
	cfg, err := decodeConfig(bytes.NewReader(img.Data))
	if err != nil {
		return core.ImageRef{}, core.WrapError(core.Invalid, err, "%s is a damaged %s image", what, mime)
	}
	sum := sha256.Sum256(img.Data)
	return core.ImageRef{
		SHA256: hex.EncodeToString(sum[:]),
		MIME:   mime,
		Size:   int64(len(img.Data)),
		Width:  cfg.Width,
		Height: cfg.Height,
		Name:   img.Name,
	}, nil
}

// isHash reports whether s is a SHA-256 in lower-case hex.
func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
