package core_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

// cellColors are the colours of the solid candidates, by cell.
var cellColors = []color.RGBA{{220, 20, 20, 255}, {20, 200, 20, 255}, {20, 20, 220, 255}, {230, 210, 30, 255}}

// solid returns a w×h PNG of one colour.
func solid(t *testing.T, w, h int, c color.RGBA) core.Image {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return encodePNG(t, m)
}

// noise returns a w×h PNG of random opaque pixels, the worst case for a
// compressor.
func noise(t *testing.T, w, h int, seed uint64) core.Image {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(r.Uint32())
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return encodePNG(t, m)
}

func encodePNG(t *testing.T, m image.Image) core.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return core.Image{Data: buf.Bytes(), MIME: "image/png"}
}

func decode(t *testing.T, img core.Image) image.Image {
	t.Helper()
	m, _, err := image.Decode(bytes.NewReader(img.Data))
	if err != nil {
		t.Fatalf("the grid does not decode: %v", err)
	}
	return m
}

// near reports whether a and b differ by at most a JPEG's rounding.
func near(a color.Color, b color.RGBA) bool {
	r, g, bl, _ := a.RGBA()
	d := func(x uint32, y uint8) bool { return int(x>>8)-int(y) <= 24 && int(y)-int(x>>8) <= 24 }
	return d(r, b.R) && d(g, b.G) && d(bl, b.B)
}

func TestGridLayoutAndCellOrder(t *testing.T) {
	const gap = 8
	for n := 2; n <= 4; n++ {
		var cands []core.Image
		for i := range n {
			cands = append(cands, solid(t, 200, 100, cellColors[i]))
		}
		grid, err := core.Grid(cands, 1<<20)
		if err != nil {
			t.Fatalf("%d candidates: %v", n, err)
		}
		if grid.MIME != "image/jpeg" {
			t.Errorf("%d opaque candidates: grid is %s, want a JPEG", n, grid.MIME)
		}
		m := decode(t, grid)
		rows := 1
		if n > 2 {
			rows = 2
		}
		if w, h := m.Bounds().Dx(), m.Bounds().Dy(); w != 2*200+3*gap || h != rows*100+(rows+1)*gap {
			t.Errorf("%d candidates: grid is %dx%d, want %dx%d", n, w, h, 2*200+3*gap, rows*100+(rows+1)*gap)
		}
		for i := range n {
			x, y := gap+i%2*(200+gap), gap+i/2*(100+gap)
			if c := m.At(x+150, y+70); !near(c, cellColors[i]) {
				t.Errorf("%d candidates: cell %d shows %v, want candidate %d's %v", n, i+1, c, i+1, cellColors[i])
			}
			// The number's badge is black in the corner, its digit white.
			if r, g, b, _ := m.At(x+4, y+4).RGBA(); max(r, g, b)>>8 > 64 {
				t.Errorf("%d candidates: cell %d has no badge in its corner: %v", n, i+1, m.At(x+4, y+4))
			}
		}
		if n == 3 {
			if c := m.At(gap+200+gap+150, gap+100+gap+70); !near(c, color.RGBA{0x30, 0x30, 0x30, 255}) {
				t.Errorf("3 candidates: the fourth cell shows %v, want the background", c)
			}
		}
	}
}

func TestGridNumbersEachCell(t *testing.T) {
	var cands []core.Image
	for range 4 {
		cands = append(cands, solid(t, 96, 96, color.RGBA{0, 0, 0, 255}))
	}
	grid, err := core.Grid(cands, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, grid)
	// The digits differ, so the badges' white pixels do.
	var shapes []string
	for i := range 4 {
		x0, y0 := 8+i%2*(96+8), 8+i/2*(96+8)
		var b strings.Builder
		for y := range 24 {
			for x := range 20 {
				if r, _, _, _ := m.At(x0+x, y0+y).RGBA(); r>>8 > 128 {
					b.WriteByte('#')
				} else {
					b.WriteByte('.')
				}
			}
		}
		if !strings.Contains(b.String(), "#") {
			t.Errorf("cell %d shows no number", i+1)
		}
		shapes = append(shapes, b.String())
	}
	for i := range shapes {
		for j := range i {
			if shapes[i] == shapes[j] {
				t.Errorf("cells %d and %d show the same number", j+1, i+1)
			}
		}
	}
}

func TestGridFitsABudgetAndIsDeterministic(t *testing.T) {
	var cands []core.Image
	for i := range 4 {
		cands = append(cands, noise(t, 512, 512, uint64(i)))
	}
	roomy, err := core.Grid(cands, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int64{200_000, 60_000} {
		grid, err := core.Grid(cands, budget)
		if err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		if int64(len(grid.Data)) > budget {
			t.Errorf("budget %d: grid has %d bytes", budget, len(grid.Data))
		}
		small, big := decode(t, grid).Bounds(), decode(t, roomy).Bounds()
		if small.Dx() >= big.Dx() || small.Dy() >= big.Dy() {
			t.Errorf("budget %d: grid is %v, not scaled down from %v", budget, small, big)
		}
		again, err := core.Grid(cands, budget)
		if err != nil || !bytes.Equal(again.Data, grid.Data) {
			t.Errorf("budget %d: the same candidates made different grids (%v)", budget, err)
		}
	}
	if _, err := core.Grid(cands, 500); err == nil {
		t.Error("a grid fitted in 500 bytes")
	}
}

func TestGridKeepsTransparencyInAPNG(t *testing.T) {
	cands := []core.Image{solid(t, 64, 64, color.RGBA{200, 0, 0, 255}), solid(t, 64, 64, color.RGBA{})}
	grid, err := core.Grid(cands, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if grid.MIME != "image/png" {
		t.Fatalf("grid with a transparent candidate is %s, want a PNG", grid.MIME)
	}
	if _, _, _, a := decode(t, grid).At(8+64+8+40, 8+40).RGBA(); a != 0 {
		t.Errorf("the transparent candidate's cell has alpha %d, want 0", a)
	}
}

func TestGridRefusesBadInput(t *testing.T) {
	one := solid(t, 16, 16, cellColors[0])
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]core.Image{
		"one candidate":   {one},
		"five candidates": {one, one, one, one, one},
		"not an image":    {one, {Data: []byte("not an image"), MIME: "image/png"}},
	}
	for name, cands := range cases {
		if _, err := core.Grid(cands, 1<<20); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	mixed := []core.Image{one, {Data: jpg.Bytes(), MIME: "image/jpeg"}}
	if _, err := core.Grid(mixed, 1<<20); err != nil {
		t.Errorf("a PNG and a JPEG: %v", err)
	}
}
