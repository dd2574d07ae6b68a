package preview

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"slices"
	"testing"

	"github.com/easel-bot/easel/core"
)

// solid returns a w×h PNG whose left three quarters are a and the rest b.
func solid(t *testing.T, w, h int, a, b color.RGBA) core.Image {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := a
			if x >= w*3/4 {
				c = b
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return core.Image{Data: buf.Bytes(), MIME: "image/png", Name: "test.png"}
}

// TestDescribe words the size and the two dominant colours, most first,
// and gives the same suggestions for the same bytes every time.
func TestDescribe(t *testing.T) {
	g := New(Config{})
	img := solid(t, 1024, 768, color.RGBA{140, 20, 30, 255}, color.RGBA{0, 128, 128, 255})
	d, err := g.Describe(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a 1024×768 image in mostly deep red and teal",
		"an abstract landscape composition in deep red and teal",
		"a deep red and teal colour study with soft gradients",
		"a minimalist landscape poster in deep red and teal",
	}
	if !slices.Equal(d.Suggestions, want) || d.Model != Model || d.CostUSD != 0 {
		t.Errorf("got %q (model %q, cost %v), want %q", d.Suggestions, d.Model, d.CostUSD, want)
	}
	again, err := g.Describe(context.Background(), img)
	if err != nil || !slices.Equal(again.Suggestions, d.Suggestions) {
		t.Errorf("second describe %q, %v: not the same", again.Suggestions, err)
	}
	one := solid(t, 64, 64, color.RGBA{245, 245, 245, 255}, color.RGBA{245, 245, 245, 255})
	if d, err := g.Describe(context.Background(), one); err != nil || d.Suggestions[0] != "a 64×64 image in mostly white" {
		t.Errorf("one colour: %q, %v", d.Suggestions, err)
	}
}

// TestDescribeNotAnImage: bytes that are no image are an Invalid error.
func TestDescribeNotAnImage(t *testing.T) {
	_, err := New(Config{}).Describe(context.Background(), core.Image{Data: []byte("hello"), Name: "notes.txt"})
	if core.KindOf(err) != core.Invalid {
		t.Errorf("got %v, want Invalid", err)
	}
}
