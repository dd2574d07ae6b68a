package preview_test

import (
	"image"
	"image/color"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/preview"
)

// TestRegionEdit: with a mask, the renderer draws at the base image's
// size (odd here), only inside the region: every pixel outside is the
// base's, the region is outlined on its inner edge, and its inside is
// drawn. A base too small for the renderer is scaled to the canvas, and
// the outside still comes from it.
func TestRegionEdit(t *testing.T) {
	g := preview.New(preview.Config{})
	base := core.Image{Data: solid(t, 257, 191, color.RGBA{10, 200, 30, 255}), MIME: "image/png"}
	r, _, _ := core.ParseRegion("center")
	rect := r.Pixels(257, 191)
	mask, err := core.RegionMask(rect, 257, 191)
	if err != nil {
		t.Fatal(err)
	}
	req := request("a lantern")
	req.Kind, req.Base, req.Mask, req.Flags.Region, req.Parent = core.KindRefine, &base, &mask, "center", 1
	res := generate(t, g, req)
	out := decodeAs(t, res.Images[0].Data, "png")
	if out.Bounds() != image.Rect(0, 0, 257, 191) {
		t.Fatalf("the edit is %v, not the base's 257x191", out.Bounds())
	}
	b := decodeAs(t, base.Data, "png")
	if n := core.ChangedOutside(b, out, rect); n != 0 {
		t.Errorf("%d pixels changed outside the region", n)
	}
	inside := core.ChangedOutside(b, out, image.Rectangle{})
	if inside < rect.Dx()*rect.Dy()*9/10 {
		t.Errorf("only %d of the region's %d pixels were drawn", inside, rect.Dx()*rect.Dy())
	}
	amber := color.RGBA{255, 209, 102, 255}
	for _, p := range []image.Point{rect.Min, {rect.Max.X - 1, rect.Min.Y + 5}, {rect.Min.X + 5, rect.Max.Y - 1}} {
		if c := color.RGBAModel.Convert(out.At(p.X, p.Y)); c != amber {
			t.Errorf("the outline at %v is %v", p, c)
		}
	}

	// A 32x32 base (smaller than the renderer draws) is scaled up to the
	// canvas of the request's size, mask too.
	small := core.Image{Data: solid(t, 32, 32, color.RGBA{10, 200, 30, 255}), MIME: "image/png"}
	smallMask, _ := core.RegionMask(r.Pixels(32, 32), 32, 32)
	req.Base, req.Mask, req.Flags.Size = &small, &smallMask, "128x128"
	out = decodeAs(t, generate(t, g, req).Images[0].Data, "png")
	if out.Bounds().Dx() != 128 || color.RGBAModel.Convert(out.At(2, 2)) != (color.RGBA{10, 200, 30, 255}) {
		t.Errorf("scaled edit %v, corner %v", out.Bounds(), out.At(2, 2))
	}
}
