package gptimage

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/easel-bot/easel/core"
)

// Check reports, without calling OpenAI, whether req can be served by
// model with prompt, the text the image model is given (which may restate
// the earlier refinements). It returns an Invalid *core.Error naming the
// offending flag for: a retired model (gpt-image-1, dall-e-*); --seed,
// which OpenAI image models do not support; --transparent with --format
// jpeg; --n outside 1..10 (0 counts as 1); an unknown --quality or --format;
// an unusable --size or --ar; an empty or too long prompt; more than 16
// input images, inputs that are not PNG, JPEG or WebP, and a mask that is not
// PNG or has no image to apply to.
//
// Sizes: the gpt-image-2 family (gpt-image-2, its dated snapshots and the
// gpt-image-2.x models) takes any WIDTHxHEIGHT with both sides divisible by
// 16, an aspect ratio between 1:3 and 3:1, at most 3840x2160 pixels in total
// and no side above 3840. Other GPT image models take only 1024x1024,
// 1536x1024, 1024x1536 and auto: any other size is not rejected but snapped
// to the one of those three closest in aspect ratio (see SnapSize).
func Check(req core.GenerateRequest, model, prompt string) error {
	if why := Retired(model); why != "" {
		return core.Errorf(core.Invalid, "--model %s.", why)
	}
	f := req.Flags
	if f.Seed != nil {
		return core.Errorf(core.Invalid, "--seed is not supported by OpenAI image models; remove it or choose another provider.")
	}
	if req.N < 0 || req.N > 10 {
		return core.Errorf(core.Invalid, "--n must be between 1 and 10 for OpenAI, not %d.", req.N)
	}
	switch f.Quality {
	case "", "low", "medium", "high", "auto":
	default:
		return core.Errorf(core.Invalid, "--quality must be low, medium, high or auto, not %q.", f.Quality)
	}
	switch f.Format {
	case "", "png", "jpeg", "webp":
	default:
		return core.Errorf(core.Invalid, "--format must be png, webp or jpeg, not %q.", f.Format)
	}
	if f.Transparent && f.Format == "jpeg" {
		return core.Errorf(core.Invalid, "--transparent needs --format png or webp: JPEG has no transparency.")
	}
	if _, err := ResolveSize(model, f); err != nil {
		return err
	}

	if strings.TrimSpace(prompt) == "" {
		return core.Errorf(core.Invalid, "The prompt is empty; describe the image you want.")
	}
	if n := utf8.RuneCountInString(prompt); n > MaxPromptRunes {
		return core.Errorf(core.Invalid, "The prompt is too long for OpenAI (%d characters with the earlier refinements; at most %d).", n, MaxPromptRunes)
	}

	images := len(req.Inputs)
	if req.Base != nil {
		images++
	}
	if images > MaxInputs {
		return core.Errorf(core.Invalid, "OpenAI takes at most %d input images; this request has %d.", MaxInputs, images)
	}
	if req.Base != nil {
		if err := checkInput(*req.Base, "the image being edited"); err != nil {
			return err
		}
	}
	for i, in := range req.Inputs {
		what := fmt.Sprintf("attachment %d", i+1)
		if in.Name != "" {
			what = fmt.Sprintf("attachment %d (%s)", i+1, in.Name)
		}
		if err := checkInput(in, what); err != nil {
			return err
		}
	}
	if m := req.Mask; m != nil {
		if images == 0 {
			return core.Errorf(core.Invalid, "A mask needs an image to edit.")
		}
		if len(m.Data) == 0 || ImageMIME(*m) != "image/png" {
			return core.Errorf(core.Invalid, "The mask must be a PNG image with transparent areas where the edit goes.")
		}
	}
	return nil
}

// checkInput checks that an input image is something OpenAI accepts.
func checkInput(im core.Image, what string) error {
	if len(im.Data) == 0 {
		return core.Errorf(core.Invalid, "%s is empty.", capitalize(what))
	}
	mime := ImageMIME(im)
	if !slices.Contains([]string{"image/png", "image/jpeg", "image/webp"}, mime) {
		return core.Errorf(core.Invalid, "%s is %s; OpenAI takes PNG, JPEG or WebP images.", capitalize(what), describeMIME(mime))
	}
	return nil
}

func describeMIME(mime string) string {
	if m, ok := strings.CutPrefix(mime, "image/"); ok {
		return "a " + strings.ToUpper(m) + " image"
	}
	if mime == "" || mime == "application/octet-stream" {
		return "not an image"
	}
	return mime
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ResolveSize returns the size to send for flags with model: "auto" when
// neither --size nor --ar is given; the size itself for the gpt-image-2
// family once checked; otherwise the nearest standard size (SnapSize). With
// only --ar, the gpt-image-2 family gets sizeForAspect and other models the
// nearest standard size. Errors are Invalid *core.Error values.
func ResolveSize(model string, f core.Flags) (string, error) {
	size := strings.ToLower(strings.TrimSpace(f.Size))
	if size == "auto" {
		return "auto", nil
	}
	if size == "" {
		if strings.TrimSpace(f.Aspect) == "" {
			return "auto", nil
		}
		ratio, ok := parseAspect(f.Aspect)
		if !ok {
			return "", core.Errorf(core.Invalid, "--ar must look like 16:9, not %q.", f.Aspect)
		}
		if !IsGPTImage2(model) {
			return snapRatio(ratio), nil
		}
		if ratio > maxAspect+1e-9 || ratio < 1/maxAspect-1e-9 {
			return "", core.Errorf(core.Invalid, "--ar %s does not work with %s: the aspect ratio must be between 1:3 and 3:1.", f.Aspect, model)
		}
		return sizeForAspect(ratio), nil
	}
	w, h, ok := ParseSize(size)
	if !ok {
		return "", core.Errorf(core.Invalid, "--size must be WIDTHxHEIGHT (like 1536x1024) or auto, not %q.", f.Size)
	}
	if !IsGPTImage2(model) {
		return SnapSize(w, h), nil
	}
	if why := checkGPTImage2Size(w, h); why != "" {
		return "", core.Errorf(core.Invalid, "--size %s does not work with %s: %s.", size, model, why)
	}
	return fmt.Sprintf("%dx%d", w, h), nil
}
