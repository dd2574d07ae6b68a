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
// its directory synced before PutImage returns. Bytes already stored cost a
// hash and a stat, and get the same reference.
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
	if fi, err := os.Stat(path); err == nil && fi.Size() == ref.Size {
		return ref, nil
	}
	if err := writeFile(path, img.Data); err != nil {
		return core.ImageRef{}, fmt.Errorf("storage: store image %s: %w", ref.SHA256, err)
	}
	return ref, nil
}

// Image returns the bytes of ref, with ref's MIME and Name. It returns a
// NotFound *core.Error when no file holds them, and an Internal one when the
// file's content does not match ref's hash.
func (db *DB) Image(ctx context.Context, ref core.ImageRef) (core.Image, error) {
	if err := ctx.Err(); err != nil {
		return core.Image{}, err
	}
	path := db.ImagePath(ref)
	if path == "" {
		return core.Image{}, core.Errorf(core.NotFound, "image %q not found", ref.SHA256)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return core.Image{}, core.Errorf(core.NotFound, "image %s not found", ref.SHA256)
	}
	if err != nil {
		return core.Image{}, fmt.Errorf("storage: read image: %w", err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 {
		return core.Image{}, core.Errorf(core.Internal, "image file %s is damaged: its content does not match its SHA-256", path)
	}
	return core.Image{Data: data, MIME: ref.MIME, Name: ref.Name}, nil
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
