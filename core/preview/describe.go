package preview

import (
	"cmp"
	"context"
	"fmt"
	"image"
	"slices"

	"github.com/easel-bot/easel/core"
)

var _ core.Describer = (*Generator)(nil)

// named is a colour of the palette descriptions are worded in.
type named struct {
	name    string
	r, g, b int
}

// palette holds the colours a description names, each pixel counted as
// the nearest of them.
var palette = []named{
	{"black", 0, 0, 0}, {"charcoal", 64, 64, 64}, {"grey", 128, 128, 128}, {"white", 245, 245, 245},
	{"deep red", 140, 20, 30}, {"red", 220, 40, 40}, {"pink", 240, 150, 180}, {"orange", 240, 140, 30},
	{"amber", 255, 190, 0}, {"yellow", 245, 230, 60}, {"olive", 110, 110, 30}, {"green", 50, 170, 60},
	{"dark green", 20, 80, 40}, {"teal", 0, 128, 128}, {"cyan", 60, 220, 230}, {"sky blue", 120, 180, 240},
	{"blue", 40, 80, 220}, {"navy", 20, 30, 90}, {"purple", 120, 50, 160}, {"magenta", 220, 40, 200},
	{"brown", 120, 70, 30}, {"beige", 225, 205, 165},
}

// samplesPerSide bounds the pixels counted along each side.
const samplesPerSide = 64

// Describe returns deterministic suggestions worded from img's size and
// its two dominant colours, such as "a 1024×1024 image in mostly deep red
// and teal": the same bytes always get the same suggestions, and it costs
// nothing. An image it cannot decode is an Invalid *core.Error.
func (g *Generator) Describe(ctx context.Context, img core.Image) (core.Description, error) {
	if err := sleep(ctx, g.cfg.Delay); err != nil {
		return core.Description{}, err
	}
	decoded, err := decode(img, orDefault(img.Name, "the image"))
	if err != nil {
		return core.Description{}, err
	}
	b := decoded.Bounds()
	colours := dominant(decoded)
	in := colours[0]
	if len(colours) > 1 {
		in += " and " + colours[1]
	}
	shape := "square"
	switch {
	case b.Dx() > b.Dy():
		shape = "landscape"
	case b.Dx() < b.Dy():
		shape = "portrait"
	}
	return core.Description{Model: Model, Suggestions: []string{
		fmt.Sprintf("a %d×%d image in mostly %s", b.Dx(), b.Dy(), in),
		fmt.Sprintf("an abstract %s composition in %s", shape, in),
		fmt.Sprintf("a %s colour study with soft gradients", in),
		fmt.Sprintf("a minimalist %s poster in %s", shape, in),
	}}, nil
}

// dominant returns the names of the one or two palette colours most of
// img's pixels are nearest to, most common first, ties in palette order.
// Fully transparent pixels are not counted.
func dominant(img image.Image) []string {
	b := img.Bounds()
	stepX, stepY := max(b.Dx()/samplesPerSide, 1), max(b.Dy()/samplesPerSide, 1)
	counts := make([]int, len(palette))
	for y := b.Min.Y; y < b.Max.Y; y += stepY {
		for x := b.Min.X; x < b.Max.X; x += stepX {
			r, g, bl, a := img.At(x, y).RGBA()
			if a == 0 {
				continue
			}
			// Un-premultiply and scale to 0..255.
			counts[nearest(int(r*255/a), int(g*255/a), int(bl*255/a))]++
		}
	}
	order := make([]int, len(palette))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(counts[j], counts[i]) })
	names := []string{palette[order[0]].name}
	if counts[order[1]] > 0 {
		names = append(names, palette[order[1]].name)
	}
	return names
}

// nearest returns the index of the palette colour nearest to r, g, b.
func nearest(r, g, b int) int {
	best, bestDist := 0, -1
	for i, c := range palette {
		dr, dg, db := r-c.r, g-c.g, b-c.b
		if d := dr*dr + dg*dg + db*db; bestDist < 0 || d < bestDist {
			best, bestDist = i, d
		}
	}
	return best
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
