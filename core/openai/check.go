package openai

import (
	"strings"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
)

// modelFor returns the model a request uses: req.Model, else the --model
// flag, else the configured default.
func (g *Generator) modelFor(req core.GenerateRequest) string {
	for _, m := range []string{req.Model, req.Flags.Model} {
		if m = strings.TrimSpace(m); m != "" {
			return m
		}
	}
	return g.cfg.Model
}

// CheckRequest reports, without calling OpenAI, whether req can be served.
// It returns an Invalid *core.Error naming the offending flag for: a retired
// model (gpt-image-1, dall-e-*); --seed, which OpenAI image models do not
// support; --transparent with --format jpeg; --n outside 1..10 (0 counts as
// 1); an unknown --quality or --format; an unusable --size or --ar; an empty
// or too long prompt; more than 16 input images, inputs that are not PNG,
// JPEG or WebP, and a mask that is not PNG or has no image to apply to.
//
// Sizes: the gpt-image-2 family (gpt-image-2, its dated snapshots and the
// gpt-image-2.x models) takes any WIDTHxHEIGHT with both sides divisible by
// 16, an aspect ratio between 1:3 and 3:1, at most 3840x2160 pixels in total
// and no side above 3840. Other GPT image models take only 1024x1024,
// 1536x1024, 1024x1536 and auto: any other size is not rejected but snapped
// to the one of those three closest in aspect ratio (see SnapSize).
func (g *Generator) CheckRequest(req core.GenerateRequest) error {
	return gptimage.Check(req, g.modelFor(req), req.FullPrompt())
}

// SnapSize returns the standard size (1024x1024, 1536x1024 or 1024x1536)
// closest in aspect ratio to width x height, comparing ratios on a
// logarithmic scale so that 2:1 and 1:2 are equally far from square. Models
// outside the gpt-image-2 family accept only these sizes (and "auto"), so
// Easel snaps any other requested size to one of them rather than failing.
func SnapSize(width, height int) string { return gptimage.SnapSize(width, height) }
