package preview

import (
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/font/opentype"

	"github.com/easel-bot/easel/core"
)

// A preview image, top to bottom: a banner saying it is a preview; in the
// text column the version number, large, the turn kind and parent, the
// prompt, the earlier requests, the things to avoid and a footer of
// settings; in the side column, if there are images, a thumbnail of the
// image being refined and smaller ones of the attachments.
//
// Every size is a fraction of the canvas's short edge (the unit), so the
// picture looks the same at 64 and 3840 pixels, down to a minimum text
// size.

// Font sizes, as fractions of the unit.
const (
	bannerScale  = 0.026
	versionScale = 0.19
	metaScale    = 0.042
	promptScale  = 0.05
	smallScale   = 0.031
	footerScale  = 0.024
	minFontPx    = 9
)

// bannerLabels say what the image is, longest first: the banner shows the
// first that fits.
var bannerLabels = []string{
	"EASEL PREVIEW RENDERER — no image model was called",
	"EASEL PREVIEW — no model was called",
	"EASEL PREVIEW",
	"PREVIEW",
}

// layout places the parts of a canvas. It depends only on the canvas size
// and on which images there are, so one layout serves every sample.
type layout struct {
	w, h    int
	unit    float64 // the short edge
	margin  int
	gap     int
	bannerH int
	text    image.Rectangle // the text column
	side    image.Rectangle // the thumbnail column; empty without images
	baseBox image.Point     // the largest base thumbnail
	cell    int             // the edge of an attachment thumbnail's square
}

// newLayout returns the layout of a w×h canvas.
func newLayout(w, h int, hasBase, hasInputs bool) layout {
	u := float64(min(w, h))
	l := layout{w: w, h: h, unit: u, margin: max(3, frac(u, 0.04)), gap: max(2, frac(u, 0.012))}
	l.bannerH = int(math.Ceil(fontPx(u, bannerScale) * 1.8))
	top, right := l.bannerH+l.margin, w-l.margin
	if hasBase || hasInputs {
		sideW := min(frac(u, 0.3), (w-3*l.margin)/2)
		l.side = image.Rect(right-sideW, top, right, h-l.margin)
		l.baseBox = image.Pt(sideW, max(1, min(sideW, l.side.Dy()*3/5)))
		l.cell = max(1, (sideW-l.gap)/2)
		right = l.side.Min.X - l.margin
	}
	l.text = image.Rect(l.margin, top, right, h-l.margin)
	return l
}

// frac returns the fraction f of u, rounded.
func frac(u, f float64) int { return int(math.Round(u * f)) }

// fontPx returns the pixel size of a font of the given scale.
func fontPx(u, scale float64) float64 { return max(minFontPx, u*scale) }

// scene is what one image shows: the request's text, and the hashes that
// choose its colours and shapes.
type scene struct {
	version     string // "v3"
	meta        string // "refine · from v2"
	prompt      string
	history     []string
	avoid       string
	details     string   // settings for the footer
	parent      []string // the base thumbnail's label, long and short
	transparent bool
	// family hashes the session's original request and seed: it picks the
	// hue, so the versions of a session look related. sample hashes
	// everything that makes this image differ from others.
	family, sample uint64
}

// newScene returns the scene of image i of req.
func newScene(req core.GenerateRequest, i int) scene {
	n := max(req.N, 1)
	kind := strings.ReplaceAll(string(req.Kind), "_", " ")
	if kind == "" {
		kind = string(core.KindGenerate)
	}
	sc := scene{
		version:     fmt.Sprintf("v%d", versionOf(req, i)),
		meta:        kind,
		prompt:      req.Prompt,
		history:     req.History,
		avoid:       req.Flags.Avoid,
		parent:      []string{"base image", "base"},
		transparent: req.Flags.Transparent,
	}
	if req.Parent > 0 {
		sc.meta += fmt.Sprintf(" · from v%d", req.Parent)
		sc.parent = []string{fmt.Sprintf("parent v%d", req.Parent), fmt.Sprintf("v%d", req.Parent)}
	}
	if n > 1 {
		sc.meta += fmt.Sprintf(" · sample %d of %d", i+1, n)
	}
	if req.Mask != nil && req.Flags.Region != "" {
		sc.meta += " · region " + req.Flags.Region
	}

	format := req.Flags.Format
	if format == "" {
		format = "png"
	}
	details := []string{format}
	seed := ""
	if req.Flags.Seed != nil {
		seed = strconv.FormatInt(*req.Flags.Seed, 10)
		details = append(details, "seed "+seed)
	}
	if req.Flags.Quality != "" {
		details = append(details, "quality "+req.Flags.Quality)
	}
	if req.Flags.Transparent {
		details = append(details, "transparent")
	}
	sc.details = strings.Join(details, " · ")

	root := req.Prompt
	if len(req.History) > 0 {
		root = req.History[0]
	}
	// A regeneration or variation repeats an earlier request: its version
	// number tells its samples apart from the earlier ones.
	salt := strconv.Itoa(i)
	if req.Kind == core.KindRegenerate || req.Kind == core.KindVariations {
		salt += "/" + strconv.Itoa(versionOf(req, i))
	}
	sc.family = hash(root, seed)
	sc.sample = hash(append([]string{string(req.Kind), req.Prompt, req.Flags.Avoid, seed, salt}, req.History...)...)
	return sc
}

// hash returns the FNV-1a hash of parts, each length-prefixed so that
// different splits of the same text differ.
func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return h.Sum64()
}

// render draws sc on a new canvas. If partial is not nil, it is called with
// the canvas half drawn (index 0: background and banner; index 1: text too)
// and may not keep it; its error ends the render.
func render(sc scene, lay layout, th thumbnails, partial func(index int, stage *image.RGBA) error) (*image.RGBA, error) {
	st, err := newStyles(lay.unit, sc.transparent)
	if err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, lay.w, lay.h))
	paintBackground(img, sc, lay)
	drawBanner(img, lay, st)
	if partial != nil {
		if err := partial(0, img); err != nil {
			return nil, err
		}
	}
	drawText(img, sc, lay, st)
	if partial != nil {
		if err := partial(1, img); err != nil {
			return nil, err
		}
	}
	drawThumbnails(img, sc, lay, st, th)
	return img, nil
}

// shrink returns img scaled down by factor, cheaply: for partial images.
func shrink(img *image.RGBA, factor int) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, max(1, b.Dx()/factor), max(1, b.Dy()/factor)))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// styles are the text styles of one canvas.
type styles struct {
	banner, version, meta, prompt, small, smallBold, footer style
}

// newStyles returns the styles for a canvas of unit u, with haloed text if
// the canvas is transparent.
func newStyles(u float64, transparent bool) (styles, error) {
	fonts, err := goFonts()
	if err != nil {
		return styles{}, err
	}
	var s styles
	for _, x := range []struct {
		dst   *style
		font  *opentype.Font
		scale float64
		color color.RGBA
	}{
		{&s.banner, fonts.bold, bannerScale, amber},
		{&s.version, fonts.bold, versionScale, white},
		{&s.meta, fonts.bold, metaScale, softWhite},
		{&s.prompt, fonts.regular, promptScale, white},
		{&s.small, fonts.regular, smallScale, softWhite},
		{&s.smallBold, fonts.bold, smallScale, softWhite},
		{&s.footer, fonts.regular, footerScale, softWhite},
	} {
		if *x.dst, err = newStyle(x.font, fontPx(u, x.scale), x.color, transparent); err != nil {
			return styles{}, err
		}
	}
	return s, nil
}

// paintBackground fills img with a diagonal gradient in the scene's hue
// (unless the scene is transparent) and lays three translucent discs over
// it, placed by the scene's sample hash.
func paintBackground(img *image.RGBA, sc scene, lay layout) {
	rng := rand.New(rand.NewPCG(sc.family, sc.sample))
	hue := float64(sc.family%360) + rng.Float64()*50 - 25
	angle := rng.Float64() * 2 * math.Pi
	discAlpha := 0.22
	if sc.transparent {
		discAlpha = 0.9 // the discs are the picture's subject
	} else {
		gradient(img, hsl(hue, 0.55, 0.36), hsl(hue+40, 0.6, 0.14), angle)
	}
	for range 3 {
		c := hsl(hue+120+rng.Float64()*120, 0.75, 0.6)
		cx, cy := rng.Float64()*float64(lay.w), rng.Float64()*float64(lay.h)
		disc(img, cx, cy, lay.unit*(0.12+rng.Float64()*0.3), c, discAlpha)
	}
}

// gradient fills img with a linear gradient from one colour to another
// along angle (radians), through a 256-entry table.
func gradient(img *image.RGBA, from, to color.RGBA, angle float64) {
	var table [256][4]uint8
	for i := range table {
		t := float64(i) / 255
		table[i] = [4]uint8{lerp(from.R, to.R, t), lerp(from.G, to.G, t), lerp(from.B, to.B, t), 255}
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	cos, sin := math.Cos(angle), math.Sin(angle)
	// Project the corners onto the gradient's direction to map them to 0..255.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range [][2]float64{{0, 0}, {float64(w), 0}, {0, float64(h)}, {float64(w), float64(h)}} {
		t := p[0]*cos + p[1]*sin
		lo, hi = min(lo, t), max(hi, t)
	}
	scale := 255 / (hi - lo)
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		t, dt := (float64(y)*sin-lo)*scale, cos*scale
		for x := 0; x < len(row); x += 4 {
			c := table[min(max(int(t), 0), 255)]
			row[x], row[x+1], row[x+2], row[x+3] = c[0], c[1], c[2], c[3]
			t += dt
		}
	}
}

// disc blends an antialiased disc of colour c at opacity alpha onto img.
func disc(img *image.RGBA, cx, cy, r float64, c color.RGBA, alpha float64) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := max(0, int(cy-r-1)); y < min(h, int(cy+r+2)); y++ {
		dy := float64(y) + 0.5 - cy
		outer := (r+0.5)*(r+0.5) - dy*dy
		if outer <= 0 {
			continue
		}
		// Pixels nearer the centre than r-0.5 are fully covered; only the
		// rim needs its distance computed.
		inner := -1.0
		if ri := r - 0.5; ri > 0 && ri*ri > dy*dy {
			inner = math.Sqrt(ri*ri - dy*dy)
		}
		span := math.Sqrt(outer)
		row := img.Pix[y*img.Stride:]
		for x := max(0, int(cx-span)); x < min(w, int(cx+span)+1); x++ {
			dx := float64(x) + 0.5 - cx
			cover := 1.0
			if math.Abs(dx) >= inner {
				cover = min(max(r+0.5-math.Hypot(dx, dy), 0), 1)
			}
			blend(row[4*x:4*x+4], c, alpha*cover)
		}
	}
}

// blend composites opaque colour c at opacity a over the premultiplied
// pixel p.
func blend(p []uint8, c color.RGBA, a float64) {
	k := uint32(a*255 + 0.5)
	inv := 255 - k
	p[0] = uint8((uint32(c.R)*k + uint32(p[0])*inv) / 255)
	p[1] = uint8((uint32(c.G)*k + uint32(p[1])*inv) / 255)
	p[2] = uint8((uint32(c.B)*k + uint32(p[2])*inv) / 255)
	p[3] = uint8((255*k + uint32(p[3])*inv) / 255)
}

// hsl returns the opaque colour of hue h (degrees), saturation s and
// lightness l (0..1).
func hsl(h, s, l float64) color.RGBA {
	h = math.Mod(h, 360)
	if h < 0 {
		h += 360
	}
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := l - c/2
	return color.RGBA{channel(r + m), channel(g + m), channel(b + m), 255}
}

// channel converts 0..1 to 0..255.
func channel(v float64) uint8 { return uint8(min(max(math.Round(v*255), 0), 255)) }

// lerp interpolates from a to b by t in 0..1.
func lerp(a, b uint8, t float64) uint8 {
	return channel((float64(a) + (float64(b)-float64(a))*t) / 255)
}

// drawBanner draws the band across the top that says what the image is.
func drawBanner(img *image.RGBA, lay layout, st styles) {
	draw.Draw(img, image.Rect(0, 0, lay.w, lay.bannerH), image.NewUniform(color.RGBA{0, 0, 0, 150}), image.Point{}, draw.Over)
	label := st.banner.fitFirst(lay.w-2*lay.margin, bannerLabels...)
	st.banner.draw(img, lay.margin, (lay.bannerH+st.banner.capTall)/2, label)
}

// drawText fills the text column, top to bottom, with what fits; the
// prompt gets the most room.
func drawText(img *image.RGBA, sc scene, lay layout, st styles) {
	col := &column{img: img, x: lay.text.Min.X, y: lay.text.Min.Y, width: lay.text.Dx(), bottom: lay.text.Max.Y - st.footer.height - lay.gap}
	col.line(st.version, sc.version)
	col.line(st.meta, sc.meta)
	col.y += 2 * lay.gap

	// Keep room below the prompt for the first and last earlier requests
	// under their heading, and for a line of things to avoid.
	avoidLines := 0
	if sc.avoid != "" {
		avoidLines = 1
	}
	reserve := avoidLines * (lay.gap + st.small.height)
	if len(sc.history) > 0 {
		reserve += 2*lay.gap + st.smallBold.height + min(len(sc.history), 2)*st.small.height
	}
	col.lines(st.prompt, sc.prompt, max(1, (col.bottom-reserve-col.y)/st.prompt.height))
	if len(sc.history) > 0 {
		col.y += 2 * lay.gap
		col.line(st.smallBold, "earlier requests")
		for _, l := range historyLines(sc.history, col.room(st.small)-avoidLines) {
			col.line(st.small, l)
		}
	}
	if sc.avoid != "" {
		col.y += lay.gap
		col.lines(st.small, "avoid: "+sc.avoid, 2)
	}
	footer := fmt.Sprintf("%d×%d · %s", lay.w, lay.h, sc.details)
	st.footer.draw(img, lay.text.Min.X, lay.text.Max.Y-(st.footer.height-st.footer.ascent), st.footer.fit(footer, lay.text.Dx()))
}

// historyLines returns at most n numbered lines for the earlier requests:
// all of them if they fit, else the original request, a count of those
// left out, and the latest ones.
func historyLines(history []string, n int) []string {
	if n <= 0 {
		return nil
	}
	var lines []string
	if len(history) <= n {
		for i, h := range history {
			lines = append(lines, fmt.Sprintf("%d. %s", i+1, h))
		}
		return lines
	}
	lines = append(lines, "1. "+history[0])
	if n == 1 {
		return lines
	}
	latest := n - 2
	lines = append(lines, fmt.Sprintf("… %d more", len(history)-1-latest))
	for i := len(history) - latest; i < len(history); i++ {
		lines = append(lines, fmt.Sprintf("%d. %s", i+1, history[i]))
	}
	return lines
}

// column draws lines of text downwards from (x, y) until bottom. Once a line
// does not fit, the column is full and draws nothing more.
type column struct {
	img           *image.RGBA
	x, y          int
	width, bottom int
	full          bool
}

// line draws s on one line, cut short with "…" if too wide.
func (c *column) line(st style, s string) {
	if c.full || c.y+st.height > c.bottom {
		c.full = true
		return
	}
	st.draw(c.img, c.x, c.y+st.ascent, st.fit(s, c.width))
	c.y += st.height
}

// lines draws text wrapped onto at most maxLines lines.
func (c *column) lines(st style, text string, maxLines int) {
	for _, l := range st.wrap(text, c.width, min(maxLines, c.room(st))) {
		c.line(st, l)
	}
}

// room returns how many more lines of st fit.
func (c *column) room(st style) int {
	if c.full {
		return 0
	}
	return max(0, (c.bottom-c.y)/st.height)
}

// drawThumbnails draws the side column: the base image, labelled with its
// version, and below it the attachments two to a row, as many as fit.
func drawThumbnails(img *image.RGBA, sc scene, lay layout, st styles, th thumbnails) {
	y := lay.side.Min.Y
	if th.base != nil {
		b := th.base.Bounds()
		r := image.Rect(lay.side.Max.X-b.Dx(), y, lay.side.Max.X, y+b.Dy())
		frame(img, r, th.base, lay)
		y = r.Max.Y + lay.gap + st.small.height
		if y <= lay.side.Max.Y {
			label := st.small.fitFirst(lay.side.Dx(), sc.parent...)
			x := max(lay.side.Min.X, r.Min.X+(r.Dx()-st.small.width(label))/2)
			st.small.draw(img, x, y-(st.small.height-st.small.ascent), label)
		}
		y += 2 * lay.gap
	}
	if len(th.inputs) == 0 {
		return
	}
	heading := "attachment"
	if len(th.inputs) > 1 {
		heading = fmt.Sprintf("%d attachments", len(th.inputs))
	}
	if y+st.small.height > lay.side.Max.Y {
		return
	}
	st.small.draw(img, lay.side.Min.X, y+st.small.ascent, st.small.fit(heading, lay.side.Dx()))
	y += st.small.height + lay.gap
	for i, t := range th.inputs {
		x0, y0 := lay.side.Min.X+(i%2)*(lay.cell+lay.gap), y+(i/2)*(lay.cell+lay.gap)
		if y0+lay.cell > lay.side.Max.Y {
			break
		}
		b := t.Bounds()
		frame(img, b.Add(image.Pt(x0+(lay.cell-b.Dx())/2, y0+(lay.cell-b.Dy())/2)), t, lay)
	}
}

// frame draws thumb into r on a white mat with a soft shadow.
func frame(img *image.RGBA, r image.Rectangle, thumb *image.RGBA, lay layout) {
	border := max(1, frac(lay.unit, 0.004))
	mat := r.Inset(-border)
	draw.Draw(img, mat.Add(image.Pt(2*border, 2*border)), image.NewUniform(color.RGBA{0, 0, 0, 90}), image.Point{}, draw.Over)
	draw.Draw(img, mat, image.NewUniform(white), image.Point{}, draw.Src)
	draw.Draw(img, r, thumb, image.Point{}, draw.Over)
}
