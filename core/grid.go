package core

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
)

// A grid shows the candidates of a turn that made several images as one
// preview, cells numbered from 1, left to right and top to bottom.
const (
	// gridCell is the longest edge of a cell, in pixels, before the cells
	// are scaled down to fit a budget; gridMinCell is the smallest edge
	// they are scaled down to.
	gridCell    = 768
	gridMinCell = 48
	gridGap     = 8 // pixels around and between the cells
	// maxGridCells is the most candidates a grid shows; a turn that makes
	// more posts each image on its own.
	maxGridCells = 4
	// maxGridBytes bounds a grid where the thread sets no upload limit.
	maxGridBytes = 8 << 20
	gridQuality  = 85 // JPEG quality of an opaque grid
)

// gridBackground fills the gaps between the cells and the margins of a
// candidate whose shape is not the cell's.
var gridBackground = color.RGBA{0x30, 0x30, 0x30, 0xff}

// Grid returns a preview of 2 to 4 candidates, in order, composed into one
// image of at most budget bytes: two side by side, three or four as 2×2,
// each cell numbered in its top-left corner. Each candidate is scaled to
// fit its cell, keeping its shape; the cells take the first candidate's
// shape. The preview is a JPEG, or a PNG when a candidate has transparent
// pixels; its cells are made smaller until it fits budget. The same
// candidates and budget give the same bytes.
func Grid(candidates []Image, budget int64) (Image, error) {
	if len(candidates) < 2 || len(candidates) > maxGridCells {
		return Image{}, fmt.Errorf("grid: %d candidates; a grid shows 2 to %d", len(candidates), maxGridCells)
	}
	cells := make([]*image.RGBA, len(candidates))
	opaque := true
	for i, c := range candidates {
		m, err := decodeImage(c)
		if err != nil {
			return Image{}, fmt.Errorf("grid: candidate %d: %w", i+1, err)
		}
		rgba := image.NewRGBA(image.Rect(0, 0, m.Bounds().Dx(), m.Bounds().Dy()))
		draw.Draw(rgba, rgba.Rect, m, m.Bounds().Min, draw.Src)
		cells[i], opaque = rgba, opaque && rgba.Opaque()
	}
	for edge := gridCell; edge >= gridMinCell; edge = edge * 3 / 4 {
		out, err := encodeGrid(layGrid(cells, edge), opaque)
		if err != nil {
			return Image{}, err
		}
		if int64(len(out.Data)) <= budget {
			return out, nil
		}
	}
	return Image{}, fmt.Errorf("grid: %d candidates do not fit in %d bytes", len(candidates), budget)
}

// layGrid draws the cells, two to a row, each at most edge pixels on its
// longest side (and no larger than the first candidate), and numbers them.
func layGrid(cells []*image.RGBA, edge int) *image.RGBA {
	w0, h0 := cells[0].Rect.Dx(), cells[0].Rect.Dy()
	edge = min(edge, max(w0, h0)) // a cell is never larger than the candidate
	cw, ch := fit(w0, h0, edge, edge)
	rows := (len(cells) + 1) / 2
	out := image.NewRGBA(image.Rect(0, 0, 2*cw+3*gridGap, rows*ch+(rows+1)*gridGap))
	draw.Draw(out, out.Rect, image.NewUniform(gridBackground), image.Point{}, draw.Src)
	for i, c := range cells {
		cell := image.Rect(0, 0, cw, ch).Add(image.Pt(gridGap+i%2*(cw+gridGap), gridGap+i/2*(ch+gridGap)))
		if !c.Opaque() {
			draw.Draw(out, cell, image.Transparent, image.Point{}, draw.Src)
		}
		w, h := fit(c.Rect.Dx(), c.Rect.Dy(), cw, ch)
		at := cell.Min.Add(image.Pt((cw-w)/2, (ch-h)/2))
		scaleInto(out, image.Rect(0, 0, w, h).Add(at), c)
		drawNumber(out, cell, i+1)
	}
	return out
}

// fit returns the size of a w×h image scaled to fit within maxW×maxH,
// keeping its shape.
func fit(w, h, maxW, maxH int) (int, int) {
	if w*maxH > h*maxW {
		return maxW, max(1, h*maxW/w)
	}
	return max(1, w*maxH/h), maxH
}

// scaleInto draws src scaled to r of dst, each pixel the average of the
// source pixels it covers (premultiplied, so transparent pixels add no
// colour).
func scaleInto(dst *image.RGBA, r image.Rectangle, src *image.RGBA) {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := r.Dx(), r.Dy()
	for y := range dh {
		y0, y1 := y*sh/dh, max((y+1)*sh/dh, y*sh/dh+1)
		for x := range dw {
			x0, x1 := x*sw/dw, max((x+1)*sw/dw, x*sw/dw+1)
			var sum [4]int
			for sy := y0; sy < y1; sy++ {
				row := src.Pix[sy*src.Stride:]
				for sx := x0; sx < x1; sx++ {
					for k := range 4 {
						sum[k] += int(row[4*sx+k])
					}
				}
			}
			n := (y1 - y0) * (x1 - x0)
			o := dst.PixOffset(r.Min.X+x, r.Min.Y+y)
			for k := range 4 {
				dst.Pix[o+k] = uint8(sum[k] / n)
			}
		}
	}
}

// digits are the cell numbers in a 5×7 pixel font.
var digits = [...][7]string{
	{"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	{".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	{"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	{"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
}

// drawNumber draws n, white on a black badge, in the top-left corner of cell.
func drawNumber(dst *image.RGBA, cell image.Rectangle, n int) {
	s := max(2, min(cell.Dx(), cell.Dy())/48) // the size of a font pixel
	badge := image.Rect(0, 0, 9*s, 11*s).Add(cell.Min.Add(image.Pt(s, s))).Intersect(cell)
	draw.Draw(dst, badge, image.Black, image.Point{}, draw.Src)
	for y, row := range digits[n-1] {
		for x, c := range row {
			if c == '#' {
				px := image.Rect(0, 0, s, s).Add(badge.Min.Add(image.Pt((2+x)*s, (2+y)*s)))
				draw.Draw(dst, px.Intersect(badge), image.White, image.Point{}, draw.Src)
			}
		}
	}
}

// encodeGrid encodes a grid: a JPEG when it is opaque, a PNG otherwise.
func encodeGrid(m *image.RGBA, opaque bool) (Image, error) {
	var buf bytes.Buffer
	if opaque {
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: gridQuality}); err != nil {
			return Image{}, fmt.Errorf("grid: encode: %w", err)
		}
		return Image{Data: buf.Bytes(), MIME: "image/jpeg", Name: "grid.jpg"}, nil
	}
	if err := png.Encode(&buf, m); err != nil {
		return Image{}, fmt.Errorf("grid: encode: %w", err)
	}
	return Image{Data: buf.Bytes(), MIME: "image/png", Name: "grid.png"}, nil
}
