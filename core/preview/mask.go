package preview

import (
	"image"

	"golang.org/x/image/draw"

	"github.com/easel-bot/easel/core"
)

// A region edit (a request with a mask) is drawn only where the mask is
// transparent: the rest of the canvas is the image being edited, and the
// region is outlined on its inner edge so the change is easy to see.

// masked is the image being edited and the region a request may change,
// both at the canvas's size.
type masked struct {
	base   *image.RGBA
	inside []bool // per pixel, row by row: may the edit draw here?
	w      int
}

// outlineColor marks the edge of an edited region.
var outlineColor = amber

// regionCanvas returns the canvas size of a region edit: the size of the
// image being edited, when the renderer can draw it, else def.
func regionCanvas(req core.GenerateRequest, def image.Point) image.Point {
	if req.Mask == nil || req.Base == nil {
		return def
	}
	w, h, err := core.ImageSize(*req.Base)
	if err != nil || w < minEdge || h < minEdge || w > maxEdge || h > maxEdge {
		return def
	}
	return image.Pt(w, h)
}

// newMasked decodes req's base image and mask, scaled to a w×h canvas. It
// returns nil for a request without a mask, and an Invalid *core.Error for
// a mask or base that cannot be decoded.
func newMasked(req core.GenerateRequest, w, h int) (*masked, error) {
	if req.Mask == nil || req.Base == nil {
		return nil, nil
	}
	b, err := decode(*req.Base, "the image being edited")
	if err != nil {
		return nil, err
	}
	m, err := decode(*req.Mask, "the mask")
	if err != nil {
		return nil, err
	}
	canvas := image.Rect(0, 0, w, h)
	base := image.NewRGBA(canvas)
	if b.Bounds().Size() == canvas.Size() {
		draw.Draw(base, canvas, b, b.Bounds().Min, draw.Src)
	} else {
		draw.BiLinear.Scale(base, canvas, b, b.Bounds(), draw.Src, nil)
	}
	alpha := image.NewAlpha(canvas)
	if m.Bounds().Size() == canvas.Size() {
		draw.Draw(alpha, canvas, m, m.Bounds().Min, draw.Src)
	} else {
		draw.NearestNeighbor.Scale(alpha, canvas, m, m.Bounds(), draw.Src, nil)
	}
	mk := &masked{base: base, inside: make([]bool, w*h), w: w}
	for i, a := range alpha.Pix {
		mk.inside[i] = a == 0
	}
	return mk, nil
}

// apply keeps img's pixels inside the region, puts the base image's
// everywhere else, and outlines the region with lines thick in proportion
// to the canvas (at least one pixel), drawn inside it.
func (mk *masked) apply(img *image.RGBA, unit float64) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := range h {
		for x := range w {
			if !mk.inside[y*w+x] {
				copy(img.Pix[y*img.Stride+4*x:y*img.Stride+4*x+4], mk.base.Pix[y*mk.base.Stride+4*x:])
			}
		}
	}
	t := max(1, frac(unit, 0.006))
	outside := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < w && y < h && !mk.inside[y*w+x]
	}
	c := outlineColor
	for y := range h {
		for x := range w {
			if !mk.inside[y*w+x] {
				continue
			}
			// On the outline: an outside pixel within t, along a row or a
			// column (the image's own edges are not the region's).
			edge := false
			for d := 1; d <= t && !edge; d++ {
				edge = outside(x-d, y) || outside(x+d, y) || outside(x, y-d) || outside(x, y+d)
			}
			if edge {
				p := img.Pix[y*img.Stride+4*x:]
				p[0], p[1], p[2], p[3] = c.R, c.G, c.B, c.A
			}
		}
	}
}
