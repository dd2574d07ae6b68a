package core

import (
	"fmt"
	"image"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A region is the part of an image a region edit may change: a named part
// (a half or one of the 3×3 cells) or a box given in percent of the image,
// "x,y,w,h" from its top-left corner. Its edges are kept as whole numbers
// of regionUnit, a 30000th of the image's width or height, so that thirds
// and hundredths of a percent are both exact and the pixels of a region
// are computed without rounding errors.

// regionUnit divides an image's edge: divisible by 3 (the cells), by 2
// (the halves) and by 10000 (percent with two decimals).
const regionUnit = 30000

// Region is a rectangle of an image in units of 1/30000 of its width and
// height; X0 < X1 and Y0 < Y1, all within 0..30000.
type Region struct {
	X0, Y0, X1, Y1 int
}

// namedRegion is a region users can name.
type namedRegion struct {
	name   string
	region Region
}

// third and half are edges in region units.
const (
	third = regionUnit / 3
	half  = regionUnit / 2
)

// regionNames lists the regions a --region NAME may be, in the order the
// choosers offer them: the halves, then the 3×3 cells row by row.
var regionNames = []namedRegion{
	{"top", Region{0, 0, regionUnit, half}},
	{"bottom", Region{0, half, regionUnit, regionUnit}},
	{"left", Region{0, 0, half, regionUnit}},
	{"right", Region{half, 0, regionUnit, regionUnit}},
	{"top-left", Region{0, 0, third, third}},
	{"top-center", Region{third, 0, 2 * third, third}},
	{"top-right", Region{2 * third, 0, regionUnit, third}},
	{"center-left", Region{0, third, third, 2 * third}},
	{"center", Region{third, third, 2 * third, 2 * third}},
	{"center-right", Region{2 * third, third, regionUnit, 2 * third}},
	{"bottom-left", Region{0, 2 * third, third, regionUnit}},
	{"bottom-center", Region{third, 2 * third, 2 * third, regionUnit}},
	{"bottom-right", Region{2 * third, 2 * third, regionUnit, regionUnit}},
}

// regionAliases are other spellings of region names.
var regionAliases = map[string]string{
	"centre": "center", "middle": "center",
	"top-centre": "top-center", "top-middle": "top-center",
	"bottom-centre": "bottom-center", "bottom-middle": "bottom-center",
	"centre-left": "center-left", "middle-left": "center-left", "left-center": "center-left",
	"centre-right": "center-right", "middle-right": "center-right", "right-center": "center-right",
	"left-top": "top-left", "right-top": "top-right", "left-bottom": "bottom-left", "right-bottom": "bottom-right",
}

// RegionNames returns the names --region accepts (besides a box in
// percent), in the order a chooser offers them.
func RegionNames() []string {
	names := make([]string, len(regionNames))
	for i, r := range regionNames {
		names[i] = r.name
	}
	return names
}

// regionHelp says what --region takes.
func regionHelp() string {
	return "a part of the image: " + strings.Join(RegionNames(), ", ") +
		"; or a box x,y,w,h in percent of the image from its top-left corner, such as 10,20,50,40"
}

// ParseRegion reads a --region value: a region name (see RegionNames; case,
// and "_" or a space for "-", do not matter) or a box "x,y,w,h" in percent, each a
// number from 0 to 100 with at most two decimals and an optional "%"
// (spaces around the numbers, and "top left" for "top-left", are fine). It
// returns the region and its canonical spelling (the name, or the box with
// its numbers written plainly), or an Invalid *Error saying what is wrong:
// an unknown name, a malformed number, a value out of range, a box of zero
// width or height or one reaching past the image's edge.
func ParseRegion(value string) (Region, string, error) {
	v := strings.ToLower(strings.TrimSpace(value))
	v = strings.ReplaceAll(v, "_", "-")
	if !strings.Contains(v, ",") {
		v = strings.Join(strings.Fields(v), "-")
		if a, ok := regionAliases[v]; ok {
			v = a
		}
		for _, r := range regionNames {
			if r.name == v {
				return r.region, r.name, nil
			}
		}
		return Region{}, "", Errorf(Invalid, "--region %s is not a region: use %s", quoteValue(value), regionHelp())
	}
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return Region{}, "", Errorf(Invalid, "--region %s has %d numbers; a box takes 4: x,y,w,h in percent, such as 10,20,50,40", quoteValue(value), len(parts))
	}
	var n [4]int // hundredths of a percent
	names := [4]string{"x", "y", "w (the width)", "h (the height)"}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		h, ok := parsePercent(p)
		if !ok {
			return Region{}, "", Errorf(Invalid, "--region %s: %s is %s, not a percentage: use a number from 0 to 100 with at most two decimals", quoteValue(value), names[i], quoteValue(p))
		}
		if h > 10000 {
			return Region{}, "", Errorf(Invalid, "--region %s: %s is %s, out of range: each number is a percentage of the image, from 0 to 100", quoteValue(value), names[i], quoteValue(p))
		}
		n[i] = h
	}
	x, y, w, h := n[0], n[1], n[2], n[3]
	switch {
	case w == 0 || h == 0:
		return Region{}, "", Errorf(Invalid, "--region %s: the box has zero size; its width and height must be above 0", quoteValue(value))
	case x+w > 10000:
		return Region{}, "", Errorf(Invalid, "--region %s: the box reaches past the right edge (x + w is %s%%, more than 100)", quoteValue(value), formatPercent(x+w))
	case y+h > 10000:
		return Region{}, "", Errorf(Invalid, "--region %s: the box reaches past the bottom edge (y + h is %s%%, more than 100)", quoteValue(value), formatPercent(y+h))
	}
	r := Region{X0: 3 * x, Y0: 3 * y, X1: 3 * (x + w), Y1: 3 * (y + h)}
	return r, strings.Join([]string{formatPercent(x), formatPercent(y), formatPercent(w), formatPercent(h)}, ","), nil
}

// parsePercent reads a number with at most two decimals, and an optional
// "%", as hundredths of a percent. Anything else (a sign, an exponent, NaN,
// Inf) is refused. A number of more than five whole digits is not
// converted: it counts as 1000000, which is out of range.
func parsePercent(s string) (int, bool) {
	s = strings.TrimSuffix(s, "%")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if (whole == "" && frac == "") || len(frac) > 2 || (hasFrac && frac == "") {
		return 0, false
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	if len(strings.TrimLeft(whole, "0")) > 5 {
		return 1000000, true
	}
	w := 0
	if whole != "" {
		w, _ = strconv.Atoi(whole)
	}
	f := 0
	if frac != "" {
		f, _ = strconv.Atoi(frac)
		if len(frac) == 1 {
			f *= 10
		}
	}
	return w*100 + f, true
}

// formatPercent writes hundredths of a percent plainly: 1250 is "12.5".
func formatPercent(h int) string {
	s := strconv.Itoa(h / 100)
	if f := h % 100; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", f), "0")
	}
	return s
}

// quoteValue quotes a value a user typed for an error message, shortened,
// with its control characters escaped.
func quoteValue(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:39]) + "…"
	}
	return strconv.Quote(s)
}

// RegionLabel describes a region's canonical spelling for people: "the
// top-left cell", "the top half", "the box 10,20,50,40 (percent)".
func RegionLabel(spelling string) string {
	switch spelling {
	case "":
		return "the whole image"
	case "top", "bottom", "left", "right":
		return "the " + spelling + " half"
	case "center":
		return "the center"
	}
	if strings.Contains(spelling, ",") {
		return "the box " + spelling + " (x,y,w,h in percent)"
	}
	return "the " + spelling + " part"
}

// Pixels returns the rectangle of a w×h image that r covers: each edge at
// the nearest pixel boundary, halves rounded up (on a 1023-pixel edge the
// left half is pixels 0 to 511). It may be empty when the region is
// narrower than a pixel.
func (r Region) Pixels(w, h int) image.Rectangle {
	return image.Rect(edge(r.X0, w), edge(r.Y0, h), edge(r.X1, w), edge(r.Y1, h))
}

// edge returns the pixel boundary nearest to e region units along n
// pixels, a half rounded up.
func edge(e, n int) int {
	return int((2*int64(e)*int64(n) + regionUnit) / (2 * regionUnit))
}

// errNoImageForRegion refuses a region edit with no image to edit.
func errNoImageForRegion() error {
	return Errorf(Invalid, "--region edits part of an existing image, and this thread has none yet: ask for the image first, then reply with --region")
}

// errStrictWithoutRegion refuses --strict-region alone.
func errStrictWithoutRegion() error {
	return Errorf(Invalid, "--strict-region keeps everything outside a region unchanged: give the region too, e.g. --region top-left --strict-region")
}

// regionMask sets up j's region edit, if it is one, on base: the mask sent
// to the provider, the region's pixels and whether it is strict.
func (e *Engine) regionMask(j *job, base Image) error {
	f := j.turn.Flags
	if f.Region == "" {
		return nil
	}
	r, _, err := ParseRegion(f.Region)
	if err != nil {
		return err
	}
	w, h, err := ImageSize(base)
	if err != nil {
		return WrapError(Invalid, err, "the image being edited (v%d) cannot be read, so --region cannot be applied to it", j.base)
	}
	rect := r.Pixels(w, h)
	if rect.Empty() {
		return Errorf(Invalid, "--region %s is smaller than a pixel on this %dx%d image: make the box larger", f.Region, w, h)
	}
	mask, err := RegionMask(rect, w, h)
	if err != nil {
		return err
	}
	j.req.Mask, j.region = &mask, rect
	j.strict = e.cfg.StrictRegion
	if f.StrictRegion != nil {
		j.strict = *f.StrictRegion
	}
	return nil
}
