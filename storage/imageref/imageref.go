// Package imageref names image bytes by their content, for every image
// store: Describe computes the reference of an image (its SHA-256, sniffed
// type, size and dimensions), and Key the content-addressed name it is
// stored under, the same in a directory and in an object store.
package imageref

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
)

// imageTypes maps each media type an image store accepts to its header
// decoder.
var imageTypes = map[string]func(io.Reader) (image.Config, error){
	"image/png":  png.DecodeConfig,
	"image/jpeg": jpeg.DecodeConfig,
	"image/gif":  gif.DecodeConfig,
	"image/webp": webp.DecodeConfig,
}

// Describe returns the reference of img's bytes, or an Invalid *core.Error
// when they are not a PNG, JPEG, GIF or WebP image whose header can be
// read. The media type is sniffed from the bytes; img.MIME is not trusted.
// img.Name is kept for display and is never part of a key.
func Describe(img core.Image) (core.ImageRef, error) {
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

// IsHash reports whether s is a SHA-256 in lower-case hex.
func IsHash(s string) bool {
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

// Key returns the content-addressed name of ref's bytes:
// <first 2 hex digits>/<sha256 hex><ext>, such as "ab/abcdef….png". It
// returns "" when ref.SHA256 is not 64 lower-case hex digits, so a malformed
// reference never names anything.
func Key(ref core.ImageRef) string {
	if !IsHash(ref.SHA256) {
		return ""
	}
	return ref.SHA256[:2] + "/" + ref.SHA256 + core.ExtForMIME(ref.MIME)
}

// DamagedError is stored image bytes that are not what their reference
// records: of another size, with content whose SHA-256 differs, or (in a
// directory) not a regular file. Image stores' Get returns it; its kind
// (core.KindOf) is Internal.
type DamagedError struct {
	Where string // the file or object, as Locate names it
	Err   error  // what is wrong with it
}

// Error names the file or object and says what is wrong with it.
func (e *DamagedError) Error() string {
	return fmt.Sprintf("image %s is damaged: %v", e.Where, e.Err)
}

// Unwrap returns what is wrong, such as a *regfile.NotRegularError.
func (e *DamagedError) Unwrap() error { return e.Err }
