package core

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // registers GIF with image.Decode
	_ "image/jpeg"
	"image/png"

	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// maxMaskPixels bounds the images a region edit decodes: the largest output
// of any provider is 8.3 megapixels; attachments are checked smaller still.
const maxMaskPixels = 40_000_000

// ImageSize returns the width and height of img from its header.
func ImageSize(img Image) (int, int, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img.Data))
	if err != nil {
		return 0, 0, fmt.Errorf("read image size: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxMaskPixels {
		return 0, 0, fmt.Errorf("image size %dx%d is out of range", cfg.Width, cfg.Height)
	}
	return cfg.Width, cfg.Height, nil
}

// RegionMask returns the mask of a region edit of a w×h image: a PNG of
// that size, with an alpha channel, transparent (0, 0, 0, 0) inside rect
// and opaque black outside, the convention of OpenAI's image edits
// (transparent is where the edit may happen).
func RegionMask(rect image.Rectangle, w, h int) (Image, error) {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	rect = rect.Intersect(m.Rect)
	for y := range h {
		row := m.Pix[y*m.Stride : y*m.Stride+4*w]
		for x := 0; x < w; x++ {
			if y >= rect.Min.Y && y < rect.Max.Y && x == rect.Min.X {
				x = rect.Max.X - 1 // inside: stays transparent
				continue
			}
			row[4*x+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		return Image{}, fmt.Errorf("encode mask: %w", err)
	}
	return Image{Data: buf.Bytes(), MIME: "image/png", Name: "mask.png"}, nil
}

// Composite returns result laid onto base inside rect, a PNG of base's
// size whose pixels outside rect are base's, decoded, unchanged: what a
// strict region edit shows. A result of another size than base is scaled
// to it first.
func Composite(base, result Image, rect image.Rectangle) (Image, error) {
	b, err := decodeImage(base)
	if err != nil {
		return Image{}, fmt.Errorf("composite: the image being edited: %w", err)
	}
	r, err := decodeImage(result)
	if err != nil {
		return Image{}, fmt.Errorf("composite: the provider's image: %w", err)
	}
	bounds := image.Rect(0, 0, b.Bounds().Dx(), b.Bounds().Dy())
	out := image.NewNRGBA(bounds)
	draw.Draw(out, bounds, b, b.Bounds().Min, draw.Src)
	if r.Bounds().Dx() != bounds.Dx() || r.Bounds().Dy() != bounds.Dy() {
		scaled := image.NewNRGBA(bounds)
		xdraw.CatmullRom.Scale(scaled, bounds, r, r.Bounds(), draw.Src, nil)
		r = scaled
	}
	rect = rect.Intersect(bounds)
	draw.Draw(out, rect, r, r.Bounds().Min.Add(rect.Min), draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return Image{}, fmt.Errorf("composite: encode: %w", err)
	}
	return Image{Data: buf.Bytes(), MIME: "image/png", Name: "composited.png"}, nil
}

// decodeImage decodes img after checking its size, recovering from a
// decoder's panic.
func decodeImage(img Image) (m image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("decode: panic: %v", p)
		}
	}()
	if _, _, err := ImageSize(img); err != nil {
		return nil, err
	}
	m, _, err = image.Decode(bytes.NewReader(img.Data))
	return m, err
}

// ChangedOutside counts the pixels of b outside rect that differ from a's
// (compared as non-premultiplied RGBA); images of different sizes differ
// everywhere. For tests and checks of strict region edits.
func ChangedOutside(a, b image.Image, rect image.Rectangle) int {
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Dx() != bb.Dx() || ab.Dy() != bb.Dy() {
		return ab.Dx() * ab.Dy()
	}
	n := 0
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			if image.Pt(x, y).In(rect) {
				continue
			}
			ca := color.NRGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y))
			cb := color.NRGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y))
			if ca != cb {
				n++
			}
		}
	}
	return n
}
