package preview

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // registers GIF with image.Decode
	_ "image/jpeg"
	_ "image/png"
	"unicode/utf8"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
)

// maxInputPixels bounds the images Generate decodes: 40 megapixels is about
// 160 MB decoded, beyond any real photo or screenshot attachment.
const maxInputPixels = 40_000_000

// decodable lists the formats, as image.DecodeConfig names them, that
// Generate accepts. Other formats registered by other packages are refused.
var decodable = map[string]bool{"png": true, "jpeg": true, "gif": true, "webp": true}

// thumbnails are req's base image and attachments, decoded and scaled to the
// boxes the layout gives them. Each input is decoded and scaled in turn, so
// at most one full-size image is in memory.
type thumbnails struct {
	base   *image.RGBA // nil without a base image
	inputs []*image.RGBA
}

// decodeThumbnails decodes req.Base and req.Inputs and scales them to fit
// lay's thumbnail boxes. It returns an Invalid *core.Error naming the first
// image that cannot be decoded or is too large, or ctx's error if ctx ends.
func decodeThumbnails(ctx context.Context, req core.GenerateRequest, lay layout) (thumbnails, error) {
	var t thumbnails
	if req.Base != nil {
		what := "the image being refined"
		if req.Parent > 0 {
			what = fmt.Sprintf("the image being refined (v%d)", req.Parent)
		}
		img, err := decode(*req.Base, what)
		if err != nil {
			return thumbnails{}, err
		}
		t.base = thumbnail(img, lay.baseBox)
	}
	for i, in := range req.Inputs {
		if err := ctx.Err(); err != nil {
			return thumbnails{}, fmt.Errorf("preview: %w", err)
		}
		img, err := decode(in, attachmentName(i, in))
		if err != nil {
			return thumbnails{}, err
		}
		t.inputs = append(t.inputs, thumbnail(img, image.Pt(lay.cell, lay.cell)))
	}
	return t, nil
}

// attachmentName names input i for error messages: by its display name,
// shortened, or else by its position.
func attachmentName(i int, in core.Image) string {
	name := in.Name
	if name == "" {
		return fmt.Sprintf("attachment %d", i+1)
	}
	if utf8.RuneCountInString(name) > 40 {
		name = string([]rune(name)[:39]) + "…"
	}
	return fmt.Sprintf("attachment %q", name)
}

// decode decodes a PNG, JPEG, GIF or WebP image after checking its declared
// dimensions, so a few hostile bytes cannot make it allocate gigabytes. Every
// failure is an Invalid *core.Error naming the image as what.
func decode(im core.Image, what string) (img image.Image, err error) {
	// The decoders parse bytes from strangers; should one of them panic,
	// the request fails instead of the process.
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, core.WrapError(core.Invalid, fmt.Errorf("panic: %v", r), "%s could not be decoded", what)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(im.Data))
	if err != nil || !decodable[format] {
		return nil, core.WrapError(core.Invalid, err, "%s is not a PNG, JPEG, GIF or WebP image", what)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, core.Errorf(core.Invalid, "%s has no pixels (it declares %dx%d)", what, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxInputPixels {
		return nil, core.Errorf(core.Invalid, "%s is too large: %dx%d is %.0f megapixels, and the limit is %d", what, cfg.Width, cfg.Height, float64(px)/1e6, maxInputPixels/1_000_000)
	}
	img, _, err = image.Decode(bytes.NewReader(im.Data))
	if err != nil {
		return nil, core.WrapError(core.Invalid, err, "%s could not be decoded (damaged %s data)", what, format)
	}
	if img.Bounds().Empty() { // a GIF's first frame may be empty
		return nil, core.Errorf(core.Invalid, "%s has no pixels", what)
	}
	return img, nil
}

// thumbnail returns img scaled, keeping its aspect ratio, to fit a box of
// size box.
func thumbnail(img image.Image, box image.Point) *image.RGBA {
	sb := img.Bounds()
	scale := min(float64(box.X)/float64(sb.Dx()), float64(box.Y)/float64(sb.Dy()))
	w, h := max(1, int(float64(sb.Dx())*scale)), max(1, int(float64(sb.Dy())*scale))
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	// A filter reads every source pixel; for a source many times larger
	// than the thumbnail (worse, one without a fast path, such as a
	// paletted image), first sample it down to twice the size.
	if sb.Dx() > 2*w || sb.Dy() > 2*h {
		mid := image.NewRGBA(image.Rect(0, 0, 2*w, 2*h))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, sb, draw.Src, nil)
		img, sb = mid, mid.Bounds()
	}
	draw.BiLinear.Scale(dst, dst.Bounds(), img, sb, draw.Src, nil)
	return dst
}
