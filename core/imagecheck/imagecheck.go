// Package imagecheck validates untrusted image bytes before anything
// decodes them.
//
// An attachment's type is sniffed from its bytes; the name and media type
// the platform declared are never trusted. Its dimensions are read from the
// header alone and checked against Limits, so a decompression bomb (a few
// hundred bytes declaring billions of pixels) is refused having cost a few
// kilobytes of memory, and nothing downstream ever decodes it. Attachment
// names are for display only: DisplayName makes one safe to show, and
// nothing uses a name as a path.
package imagecheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
)

// Ceilings applied when a Limits field is zero, so that a caller cannot
// switch the dimension check off by forgetting to set it.
const (
	DefaultMaxSide   = 16384
	DefaultMaxPixels = 40_000_000 // about 160 MB once decoded as RGBA
)

// maxNameRunes bounds a display name.
const maxNameRunes = 100

// Limits bound the images Check accepts, and the attachments of a message
// a Fetcher fetches.
type Limits struct {
	// MaxBytes bounds the encoded size; 0 leaves it to the caller, which
	// must have capped the download already.
	MaxBytes int64
	// MaxSide bounds the width and the height in pixels; 0 means
	// DefaultMaxSide.
	MaxSide int
	// MaxPixels bounds width×height; 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxFiles bounds the images of one message (see Fetcher.FetchAll);
	// Check ignores it.
	MaxFiles int
}

func (l Limits) withDefaults() Limits {
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	return l
}

// decoders maps each media type whose header Check reads, as
// http.DetectContentType names it, to the function that reads it. Each
// reads the header only and allocates nothing in proportion to the
// dimensions it finds.
var decoders = map[string]func(io.Reader) (image.Config, error){
	"image/png":  png.DecodeConfig,
	"image/jpeg": jpeg.DecodeConfig,
	"image/webp": webp.DecodeConfig,
	"image/gif":  gif.DecodeConfig,
}

// Check returns data as an input image named name if it is a PNG, JPEG or
// WebP image whose header declares dimensions within lim. It never decodes
// the pixels. The returned image's MIME is the sniffed type and its Name is
// DisplayName(name).
//
// Every refusal is an Invalid *core.Error whose message names the
// attachment (by its display name) and says what to attach instead: bytes
// that are no image or of another type (GIF among them: image models do not
// take it), a header that cannot be read, no pixels, or too many.
func Check(name string, data []byte, lim Limits) (core.Image, error) {
	name = DisplayName(name)
	lim = lim.withDefaults()
	if len(data) == 0 {
		return core.Image{}, core.Errorf(core.Invalid, "%s is empty: attach a PNG, JPEG or WebP image", name)
	}
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return core.Image{}, core.Errorf(core.Invalid, "%s is %s; attached images can be at most %s", name, size(int64(len(data))), size(lim.MaxBytes))
	}
	mime, _, _ := strings.Cut(http.DetectContentType(data), ";")
	decodeConfig, ok := decoders[mime]
	if !ok {
		return core.Image{}, core.Errorf(core.Invalid, "%s is not an image Easel can use (it looks like %s): attach a PNG, JPEG or WebP image", name, mime)
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return core.Image{}, core.WrapError(core.Invalid, err, "%s could not be read as an image; is it damaged? Attach a PNG, JPEG or WebP image", name)
	}
	w, h := int64(cfg.Width), int64(cfg.Height)
	switch {
	case w <= 0 || h <= 0:
		return core.Image{}, core.Errorf(core.Invalid, "%s has no pixels (it declares %dx%d)", name, w, h)
	case w > int64(lim.MaxSide) || h > int64(lim.MaxSide) || w*h > lim.MaxPixels:
		return core.Image{}, core.Errorf(core.Invalid, "%s is %dx%d pixels; attached images can be at most %s megapixels and %d pixels on a side",
			name, w, h, megapixels(lim.MaxPixels), lim.MaxSide)
	case mime == "image/gif":
		return core.Image{}, core.Errorf(core.Invalid, "%s is a GIF, which image models don't take: attach a PNG, JPEG or WebP image", name)
	case !complete(mime, data):
		return core.Image{}, core.Errorf(core.Invalid, "%s is cut short, as if its upload broke off: attach it again", name)
	}
	return core.Image{Data: data, MIME: mime, Name: name}, nil
}

// complete reports whether data runs to the end its format's structure
// promises, without decoding anything: a PNG's chunks up to IEND, a WebP's
// RIFF length, a JPEG's end-of-image marker after its first scan. A header
// alone passes DecodeConfig; a file cut short does not pass here.
func complete(mime string, data []byte) bool {
	switch mime {
	case "image/png":
		for rest := data[8:]; ; {
			if len(rest) < 12 {
				return false
			}
			n := uint64(binary.BigEndian.Uint32(rest))
			if uint64(len(rest)) < 12+n {
				return false
			}
			if string(rest[4:8]) == "IEND" {
				return true
			}
			rest = rest[12+n:]
		}
	case "image/webp":
		return len(data) >= 8 && uint64(len(data))-8 >= uint64(binary.LittleEndian.Uint32(data[4:]))
	case "image/jpeg":
		sos := bytes.Index(data, []byte{0xff, 0xda})
		return sos >= 0 && bytes.Contains(data[sos:], []byte{0xff, 0xd9})
	}
	return true
}

// DisplayName returns an attachment's name made safe to show in a message
// or a log line: its last path element only (a name such as
// "../../etc/passwd" or `a\b.png` shows as "passwd" or "b.png", and never
// reads as a path), cleaned by safetext.Name (one line of valid UTF-8
// without control, format or bidirectional characters), trimmed and at most
// 100 characters. A name with nothing left is "the attachment".
func DisplayName(name string) string {
	elems := strings.FieldsFunc(safetext.Name(name), func(r rune) bool { return r == '/' || r == '\\' })
	name = ""
	for i := len(elems) - 1; i >= 0; i-- {
		if e := strings.TrimSpace(elems[i]); e != "" && e != "." && e != ".." {
			name = e
			break
		}
	}
	if name == "" {
		return "the attachment"
	}
	if utf8.RuneCountInString(name) > maxNameRunes {
		name = string([]rune(name)[:maxNameRunes-1]) + "…"
	}
	return name
}

// size renders a byte count for people: "20.0 MB", "512 KB".
func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KB", max(n>>10, 1))
}

// megapixels renders a pixel count in megapixels: "40", "2.5".
func megapixels(px int64) string {
	return fmt.Sprintf("%g", float64(px)/1e6)
}
