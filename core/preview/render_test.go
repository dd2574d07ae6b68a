package preview

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

func TestCanvasSize(t *testing.T) {
	for _, tc := range []struct {
		flags core.Flags
		w, h  int
	}{
		{core.Flags{}, 1024, 1024},
		{core.Flags{Size: "auto"}, 1024, 1024},
		{core.Flags{Size: "1536x1024", Aspect: "16:9"}, 1536, 1024},
		{core.Flags{Aspect: "16:9"}, 1360, 768},
		{core.Flags{Aspect: "1:1"}, 1024, 1024},
		{core.Flags{Aspect: "2:3"}, 832, 1248},
		{core.Flags{Aspect: "1:100"}, 96, 3840}, // clamped,
	} {
		w, h, err := canvasSize(tc.flags)
		if err != nil || w != tc.w || h != tc.h {
			t.Errorf("canvasSize(%+v) = %d, %d, %v; want %d, %d", tc.flags, w, h, err, tc.w, tc.h)
		}
	}
}

func TestWrap(t *testing.T) {
	fonts, err := goFonts()
	if err != nil {
		t.Fatal(err)
	}
	for _, px := range []float64{9, 24, 120} {
		st, err := newStyle(fonts.regular, px, white, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{
			"a lighthouse at dusk, watercolour",
			strings.Repeat("x", 500),
			strings.Repeat("the quick brown fox ", 100),
			"short " + strings.Repeat("W", 200) + " tail",
		} {
			for _, width := range []int{5, 40, 300, 2000} {
				lines := st.wrap(text, width, 4)
				if len(lines) > 4 {
					t.Errorf("%vpx, width %d: %d lines, want at most 4", px, width, len(lines))
				}
				for _, l := range lines {
					if !st.fits(l, width) || st.width(l) > width+1 {
						t.Errorf("%vpx, width %d: line %q is %dpx wide", px, width, l, st.width(l))
					}
				}
				joined := strings.Join(lines, " ")
				whole := strings.Join(strings.Fields(text), " ")
				switch {
				case width < 2*int(px):
					// Too narrow for a letter and an ellipsis: anything that fits will do.
				case len(lines) == 0:
					t.Errorf("%vpx, width %d: no lines for %.20q", px, width, text)
				case strings.HasSuffix(joined, ellipsis):
					// Cut short: what is shown is the text's start.
					if start := strings.TrimSuffix(lines[len(lines)-1], ellipsis); !strings.Contains(whole, start) {
						t.Errorf("%vpx, width %d: last line %q is not from the text", px, width, lines[len(lines)-1])
					}
				case strings.ReplaceAll(joined, " ", "") != strings.ReplaceAll(whole, " ", ""):
					t.Errorf("%vpx, width %d: lines %q lose text without an ellipsis", px, width, lines)
				}
			}
		}
	}
}

func TestFitFirst(t *testing.T) {
	fonts, err := goFonts()
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStyle(fonts.bold, 20, white, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.fitFirst(10000, bannerLabels...); got != bannerLabels[0] {
		t.Errorf("wide: %q, want the full label", got)
	}
	if got := st.fitFirst(st.width("EASEL PREVIEW"), bannerLabels...); got != "EASEL PREVIEW" {
		t.Errorf("narrow: %q, want EASEL PREVIEW", got)
	}
	if got := st.fitFirst(st.width("PRE…"), bannerLabels...); got != "PRE…" {
		t.Errorf("very narrow: %q, want PRE…", got)
	}
	if got := st.fitFirst(1, bannerLabels...); got != "" {
		t.Errorf("no room: %q, want nothing", got)
	}
}

func TestHistoryLines(t *testing.T) {
	h := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, []string{"1. a"}},
		{2, []string{"1. a", "… 4 more"}},
		{3, []string{"1. a", "… 3 more", "5. e"}},
		{4, []string{"1. a", "… 2 more", "4. d", "5. e"}},
		{5, []string{"1. a", "2. b", "3. c", "4. d", "5. e"}},
		{9, []string{"1. a", "2. b", "3. c", "4. d", "5. e"}},
	} {
		if got := historyLines(h, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("historyLines(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestThumbnailPlacement checks that the base image appears in the top
// right corner and the attachments below it.
func TestThumbnailPlacement(t *testing.T) {
	red, blue := color.RGBA{220, 20, 20, 255}, color.RGBA{20, 20, 220, 255}
	req := core.GenerateRequest{
		Kind: core.KindRefine, Prompt: "make it blue", N: 1, Version: 2, Parent: 1,
		Flags:  core.Flags{Size: "680x384"},
		Base:   &core.Image{Data: solidPNG(t, 400, 300, red)},
		Inputs: []core.Image{{Data: solidPNG(t, 100, 100, blue)}},
	}
	for _, withBase := range []bool{true, false} {
		r := req
		if !withBase {
			r.Base = nil
		}
		res, err := New(Config{}).Generate(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(res.Images[0].Data))
		if err != nil {
			t.Fatal(err)
		}
		lay := newLayout(680, 384, withBase, true)
		redBox, blueBox := where(img, red), where(img, blue)
		if withBase {
			// The base keeps its aspect ratio, as wide as the side column.
			want := image.Rect(lay.side.Max.X-lay.side.Dx(), lay.side.Min.Y, lay.side.Max.X, lay.side.Min.Y+lay.side.Dx()*3/4)
			if absDiff(redBox, want) > 1 {
				t.Errorf("base thumbnail at %v, want %v", redBox, want)
			}
			if blueBox.Min.Y <= redBox.Max.Y {
				t.Errorf("attachment at %v is not below the base at %v", blueBox, redBox)
			}
		} else if !redBox.Empty() {
			t.Errorf("without a base, red pixels at %v", redBox)
		}
		if blueBox.Dx() != lay.cell || blueBox.Dy() != lay.cell || !blueBox.In(lay.side) {
			t.Errorf("attachment thumbnail at %v, want a %dpx square in %v", blueBox, lay.cell, lay.side)
		}
	}
}

// where returns the bounds of the pixels of img of colour c.
func where(img image.Image, c color.RGBA) image.Rectangle {
	var r image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

// absDiff returns the largest difference between the corners of a and b.
func absDiff(a, b image.Rectangle) int {
	d := 0
	for _, v := range []int{a.Min.X - b.Min.X, a.Min.Y - b.Min.Y, a.Max.X - b.Max.X, a.Max.Y - b.Max.Y} {
		d = max(d, v, -v)
	}
	return d
}

func solidPNG(t testing.TB, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		r, g, b, a := c.RGBA()
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(r>>8), uint8(g>>8), uint8(b>>8), uint8(a>>8)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecode checks that decode refuses bad bytes with an Invalid error and
// never returns an image that is empty or over the pixel limit.
func FuzzDecode(f *testing.F) {
	f.Add(solidPNG(f, 3, 2, color.White))
	var emptyFrame bytes.Buffer
	p := image.NewPaletted(image.Rect(0, 0, 0, 0), color.Palette{color.Black})
	if err := gif.EncodeAll(&emptyFrame, &gif.GIF{Image: []*image.Paletted{p}, Delay: []int{0}, Config: image.Config{Width: 10, Height: 10, ColorModel: p.Palette}}); err != nil {
		f.Fatal(err)
	}
	f.Add(emptyFrame.Bytes())
	f.Add([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"))
	f.Add([]byte("GIF89a\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decode(core.Image{Data: data}, "the input")
		if err != nil {
			if core.KindOf(err) != core.Invalid || !strings.HasPrefix(core.UserMessage(err, ""), "the input ") {
				t.Fatalf("error %v: want an Invalid error naming the input", err)
			}
			return
		}
		if b := img.Bounds(); b.Empty() || b.Dx()*b.Dy() > maxInputPixels {
			t.Fatalf("decoded an image of %v", b)
		}
		thumbnail(img, image.Pt(7, 5))
	})
}
