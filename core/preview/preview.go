// Package preview is Easel's offline image renderer: a core.Generator that
// calls no model. It draws the prompt, the turn kind and the version lineage
// onto a canvas of the requested size, with a thumbnail of the image being
// refined in a corner, so that a chain of refinements shows up as nested
// thumbnails. Newcomers use it to see the whole loop without an API key, and
// tests use it to exercise the engine.
//
// Output is deterministic: the same request yields byte-identical images (on
// the same platform), while another version number, sample or seed changes
// the picture.
package preview

import (
	"context"
	"fmt"
	"image"
	"strconv"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
)

// Model is the model name reported in every Result.
const Model = "preview"

// Request limits. The edge limits match the widest provider's; the sample
// limit keeps a request cheap even at the largest size.
const (
	minEdge     = 64
	maxEdge     = 3840
	maxSamples  = 10
	defaultEdge = 1024
)

// Config configures a Generator.
type Config struct {
	// Delay is simulated model latency: Generate takes at least this long
	// (spread over the partial images when progress is reported), and returns
	// early if its context ends meanwhile.
	Delay time.Duration
}

// Generator renders preview images. It implements core.Generator and
// core.RequestChecker, and is safe for concurrent use.
type Generator struct {
	cfg Config
}

var (
	_ core.Generator      = (*Generator)(nil)
	_ core.RequestChecker = (*Generator)(nil)
)

// New returns a Generator configured by cfg.
func New(cfg Config) *Generator {
	return &Generator{cfg: cfg}
}

// CheckRequest returns an Invalid *core.Error if the preview renderer cannot
// serve req: a size that is not WIDTHxHEIGHT with edges from 64 to 3840
// pixels, an unparseable aspect ratio, an output format other than png or
// jpeg, transparency asked of JPEG, or more than 10 images. It returns nil
// otherwise. N below 1 counts as 1. Inputs are checked by Generate, which
// decodes them.
func (g *Generator) CheckRequest(req core.GenerateRequest) error {
	if _, _, err := canvasSize(req.Flags); err != nil {
		return err
	}
	switch req.Flags.Format {
	case "", "png":
	case "jpeg":
		if req.Flags.Transparent {
			return core.Errorf(core.Invalid, "--transparent needs --format png: JPEG has no transparency")
		}
	case "webp":
		return core.Errorf(core.Invalid, "--format webp is not available with the preview renderer: it writes png or jpeg (there is no WebP encoder)")
	default:
		return core.Errorf(core.Invalid, "--format %s is not allowed: the preview renderer writes png or jpeg", req.Flags.Format)
	}
	if req.N > maxSamples {
		return core.Errorf(core.Invalid, "--n %d is too many: the preview renderer makes 1 to %d images per request", req.N, maxSamples)
	}
	return nil
}

// Generate renders max(req.N, 1) images. It returns an Invalid *core.Error
// for a request CheckRequest refuses and for a base image or attachment that
// is not a PNG, JPEG, GIF or WebP image of at most 40 megapixels. If ctx ends
// first, it returns ctx.Err() wrapped, so errors.Is detects
// context.Canceled and context.DeadlineExceeded. If req.Progress is set, it
// is called twice, with partial images of Index 0 and 1, before Generate
// returns. Results report Model "preview", one attempt and no usage or cost.
// req.Model is ignored. With req.Mask (and a base image), a region edit,
// the image has the base image's size (when the renderer can draw that
// size) and is drawn only where the mask is transparent, with the region
// outlined on its inner edge; everywhere else it is the base image.
func (g *Generator) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	if err := g.CheckRequest(req); err != nil {
		return core.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return core.Result{}, fmt.Errorf("preview: %w", err)
	}
	w, h, _ := canvasSize(req.Flags) // checked above
	size := regionCanvas(req, image.Pt(w, h))
	w, h = size.X, size.Y
	lay := newLayout(w, h, req.Base != nil, len(req.Inputs) > 0)
	thumbs, err := decodeThumbnails(ctx, req, lay)
	if err != nil {
		return core.Result{}, err
	}
	mk, err := newMasked(req, w, h)
	if err != nil {
		return core.Result{}, err
	}

	steps := 1
	if req.Progress != nil {
		steps += 2
	}
	pause := g.cfg.Delay / time.Duration(steps)
	enc := encoderFor(req.Flags)
	var partial func(int, *image.RGBA) error
	if req.Progress != nil {
		partial = func(index int, stage *image.RGBA) error {
			if err := sleep(ctx, pause); err != nil {
				return err
			}
			// The half-drawn image at a quarter, then half, of its size.
			if mk != nil {
				masked := image.NewRGBA(stage.Rect)
				copy(masked.Pix, stage.Pix)
				mk.apply(masked, lay.unit)
				stage = masked
			}
			data, err := enc.encode(shrink(stage, 4>>index))
			if err != nil {
				return err
			}
			req.Progress(core.Partial{Index: index, Image: core.Image{Data: data, MIME: enc.mime, Name: fmt.Sprintf("partial-%d%s", index, enc.ext)}})
			return nil
		}
	}
	res := core.Result{Model: Model, Attempts: 1}
	for i := range max(req.N, 1) {
		if err := ctx.Err(); err != nil {
			return core.Result{}, fmt.Errorf("preview: %w", err)
		}
		img, err := render(newScene(req, i), lay, thumbs, partial)
		if err != nil {
			return core.Result{}, err
		}
		if mk != nil {
			mk.apply(img, lay.unit)
		}
		partial = nil // only the first image is streamed
		data, err := enc.encode(img)
		if err != nil {
			return core.Result{}, err
		}
		res.Images = append(res.Images, core.Image{Data: data, MIME: enc.mime, Name: fmt.Sprintf("preview-v%d%s", versionOf(req, i), enc.ext)})
	}
	if err := sleep(ctx, pause); err != nil {
		return core.Result{}, err
	}
	return res, nil
}

// canvasSize returns the output size asked for by f: Size if set, else a
// size of about a megapixel for Aspect if set, else 1024x1024. It returns an
// Invalid *core.Error for a malformed or out-of-range value.
func canvasSize(f core.Flags) (w, h int, err error) {
	switch {
	case f.Size != "" && f.Size != "auto":
		w, h, ok := core.ParseSize(f.Size)
		if !ok || w < minEdge || h < minEdge || w > maxEdge || h > maxEdge {
			return 0, 0, core.Errorf(core.Invalid, "--size %s is not allowed: the preview renderer needs WIDTHxHEIGHT with each edge from %d to %d pixels, such as 1536x1024", f.Size, minEdge, maxEdge)
		}
		return w, h, nil
	case f.Aspect != "":
		a, b, ok := strings.Cut(f.Aspect, ":")
		aw, err1 := strconv.Atoi(a)
		ah, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || aw <= 0 || ah <= 0 || aw > 100 || ah > 100 {
			return 0, 0, core.Errorf(core.Invalid, "--ar %s is not an aspect ratio: use W:H such as 16:9", f.Aspect)
		}
		w, h, _ := core.ParseSize(core.SizeForAspect(aw, ah))
		return min(max(w, minEdge), maxEdge), min(max(h, minEdge), maxEdge), nil
	default:
		return defaultEdge, defaultEdge, nil
	}
}

// versionOf returns the version number image i of req will get, counting
// from 1 if req has no version.
func versionOf(req core.GenerateRequest, i int) int {
	return max(req.Version, 1) + i
}

// sleep waits for d, or returns ctx's error, wrapped, if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("preview: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
