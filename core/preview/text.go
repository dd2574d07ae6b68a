package preview

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// ellipsis marks text cut short.
const ellipsis = "…"

// Text colours. Text is drawn light, over a dark shadow that keeps it
// legible on any background.
var (
	white       = color.RGBA{255, 255, 255, 255}
	softWhite   = color.RGBA{225, 225, 225, 235} // premultiplied
	amber       = color.RGBA{255, 209, 102, 255}
	shadowColor = color.RGBA{0, 0, 0, 130}
)

// goFonts holds the parsed Go fonts, which are safe for concurrent use;
// faces made from them are not, so each render makes its own.
var goFonts = sync.OnceValues(func() (fontPair, error) {
	regular, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return fontPair{}, fmt.Errorf("preview: parse Go Regular: %w", err)
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return fontPair{}, fmt.Errorf("preview: parse Go Bold: %w", err)
	}
	return fontPair{regular, bold}, nil
})

// fontPair is a regular and a bold font.
type fontPair struct {
	regular, bold *opentype.Font
}

// style is a font face at one pixel size with a colour and the metrics the
// layout needs, in whole pixels.
type style struct {
	face                    font.Face
	ascent, height, capTall int
	color                   color.RGBA
	// The text's shadow is drawn at each of the offsets; reach is how far
	// it extends beyond the text.
	shadows []image.Point
	reach   int
}

// newStyle returns f at px pixels (72 DPI, so points are pixels) in col,
// with a drop shadow, or with a halo all round if halo is set: a halo keeps
// light text legible on the unknown background behind a transparent image.
func newStyle(f *opentype.Font, px float64, col color.RGBA, halo bool) (style, error) {
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return style{}, fmt.Errorf("preview: font face at %.1fpx: %w", px, err)
	}
	m := face.Metrics()
	st := style{face: face, ascent: m.Ascent.Ceil(), height: m.Height.Ceil(), capTall: m.CapHeight.Ceil(), color: col}
	if halo {
		st.reach = min(max(1, int(px/24)), 3)
		for _, d := range []image.Point{{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}} {
			st.shadows = append(st.shadows, d.Mul(st.reach))
		}
	} else {
		st.reach = max(1, int(px/22))
		st.shadows = []image.Point{{st.reach, st.reach}}
	}
	return st, nil
}

// draw draws s with its shadow, its baseline starting at (x, baseline).
func (st style) draw(dst *image.RGBA, x, baseline int, s string) {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(shadowColor), Face: st.face}
	for _, o := range st.shadows {
		d.Dot = fixed.P(x+o.X, baseline+o.Y)
		d.DrawString(s)
	}
	d.Src, d.Dot = image.NewUniform(st.color), fixed.P(x, baseline)
	d.DrawString(s)
}

// width returns the width of s in pixels, shadow included, rounded up.
func (st style) width(s string) int {
	return font.MeasureString(st.face, s).Ceil() + st.reach
}

// fits reports whether s, shadow included, is at most width pixels wide.
func (st style) fits(s string, width int) bool {
	return st.prefix(s, width) == len(s)
}

// prefix returns the length in bytes of the longest prefix of s, cut at a
// rune boundary, that is at most width pixels wide with its shadow.
func (st style) prefix(s string, width int) int {
	limit := fixed.I(width - st.reach)
	var adv fixed.Int26_6
	prev := rune(-1)
	for i, r := range s {
		if prev >= 0 {
			adv += st.face.Kern(prev, r)
		}
		a, _ := st.face.GlyphAdvance(r)
		if adv += a; adv > limit {
			return i
		}
		prev = r
	}
	return len(s)
}

// fitFirst returns the first of alternatives that fits in width pixels, or
// else the last cut short to fit.
func (st style) fitFirst(width int, alternatives ...string) string {
	for _, s := range alternatives {
		if st.fits(s, width) {
			return s
		}
	}
	return st.fit(alternatives[len(alternatives)-1], width)
}

// fit returns s if it is at most width pixels wide, and otherwise as much of
// it as fits followed by "…" (or "" if not even that fits).
func (st style) fit(s string, width int) string {
	if st.fits(s, width) {
		return s
	}
	return st.cut(s, width)
}

// cut returns as much of s as fits in width pixels together with a
// trailing "…", which it always adds: s is known to continue.
func (st style) cut(s string, width int) string {
	room := width - font.MeasureString(st.face, ellipsis).Ceil()
	if room < 0 {
		return ""
	}
	return strings.TrimRight(s[:st.prefix(s, room)], " ") + ellipsis
}

// wrap breaks text into at most maxLines lines of at most width pixels,
// at spaces where it can and inside over-long words where it must. If the
// text does not fit, the last line ends with "…".
func (st style) wrap(text string, width, maxLines int) []string {
	var lines []string
	words := strings.Fields(text)
	cur := ""
	for i := 0; i < len(words) && maxLines > 0; i++ {
		candidate := words[i]
		if cur != "" {
			candidate = cur + " " + words[i]
		}
		switch {
		case st.fits(candidate, width):
			cur = candidate
		case len(lines) == maxLines-1:
			return append(lines, st.cut(candidate, width))
		case cur != "":
			lines, cur = append(lines, cur), ""
			i-- // the word starts the next line
		default: // a word too long for a line of its own: break it
			n := st.prefix(words[i], width)
			if n == 0 { // not even one letter fits
				if len(lines) > 0 {
					lines[len(lines)-1] = st.cut(lines[len(lines)-1], width)
				}
				return lines
			}
			lines = append(lines, words[i][:n])
			words[i] = words[i][n:]
			i--
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
