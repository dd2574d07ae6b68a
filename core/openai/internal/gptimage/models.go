// Package gptimage is what Easel knows of OpenAI's GPT image models,
// whichever API calls them (the Images API, or the image_generation tool of
// the Responses API): which models are retired, which sizes and flags they
// take, what their answers' images and usage mean, their prices and how many
// tokens a request will use.
package gptimage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size limits of the gpt-image-2 family: arbitrary WIDTHxHEIGHT, both
// divisible by 16, aspect ratio between 1:3 and 3:1, at most 3840x2160 pixels
// in total and no edge longer than 3840.
const (
	sizeStep  = 16
	maxPixels = 3840 * 2160 // 8,294,400
	maxEdge   = 3840
	maxAspect = 3.0
)

// Limits of a request.
const (
	// MaxPromptRunes is the longest prompt the image models take.
	MaxPromptRunes = 32000
	// MaxInputs is the most input images one request may carry.
	MaxInputs = 16
)

// standardSizes are the sizes every GPT image model accepts besides "auto".
var standardSizes = []struct {
	size string
	w, h int
}{
	{"1024x1024", 1024, 1024},
	{"1536x1024", 1536, 1024},
	{"1024x1536", 1024, 1536},
}

// Retired returns why model can no longer be used, starting with the
// model's name, or "" if it can be used. gpt-image-1 (and its dated
// snapshots) was shut down on 2026-10-23; every DALL·E model is retired.
func Retired(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	switch {
	case m == "gpt-image-1" || isDated(m, "gpt-image-1"):
		return model + " was shut down on 2026-10-23; use gpt-image-2 or gpt-image-1.5"
	case strings.HasPrefix(m, "dall-e"):
		return model + ": DALL·E models are retired; use gpt-image-2"
	}
	return ""
}

// IsGPTImage2 reports whether model belongs to the gpt-image-2 family, which
// accepts arbitrary sizes: gpt-image-2, its dated snapshots
// (gpt-image-2-2026-04-21) and the gpt-image-2.x models
// (gpt-image-2.5-flare…).
func IsGPTImage2(model string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(model), "gpt-image-2")
	return ok && (rest == "" || rest[0] == '-' || rest[0] == '.')
}

// SupportsInputFidelity reports whether edits with model accept
// input_fidelity "high". Per the API reference only gpt-image-1.5 does:
// gpt-image-1-mini accepts only "low" and the gpt-image-2 family wants the
// parameter omitted.
func SupportsInputFidelity(model string) bool {
	m := strings.ToLower(model)
	return m == "gpt-image-1.5" || isDated(m, "gpt-image-1.5")
}

// isDated reports whether model is base followed by a -YYYY-MM-DD snapshot date.
func isDated(model, base string) bool {
	rest, ok := strings.CutPrefix(model, base+"-")
	return ok && isDate(rest)
}

func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i, c := range s {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Undated strips a trailing -YYYY-MM-DD snapshot date from model.
func Undated(model string) string {
	if len(model) > 11 && model[len(model)-11] == '-' && isDate(model[len(model)-10:]) {
		return model[:len(model)-11]
	}
	return model
}

// ParseSize parses "WIDTHxHEIGHT" (case and surrounding spaces ignored)
// with positive dimensions.
func ParseSize(s string) (w, h int, ok bool) {
	ws, hs, found := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	if !found || ws == "" || hs == "" || ws[0] == '+' || hs[0] == '+' {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, false
	}
	return w, h, true
}

// parseAspect parses "W:H" with positive numbers and returns W/H.
func parseAspect(s string) (float64, bool) {
	ws, hs, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		return 0, false
	}
	w, err1 := strconv.ParseFloat(ws, 64)
	h, err2 := strconv.ParseFloat(hs, 64)
	if err1 != nil || err2 != nil || !(w > 0) || !(h > 0) || math.IsInf(w, 0) || math.IsInf(h, 0) {
		return 0, false
	}
	return w / h, true
}

// SnapSize returns the standard size (1024x1024, 1536x1024 or 1024x1536)
// closest in aspect ratio to width x height, comparing ratios on a
// logarithmic scale so that 2:1 and 1:2 are equally far from square. Models
// outside the gpt-image-2 family accept only these sizes (and "auto"), so
// Easel snaps any other requested size to one of them rather than failing.
func SnapSize(width, height int) string {
	return snapRatio(float64(width) / float64(height))
}

func snapRatio(ratio float64) string {
	best, bestDist := standardSizes[0].size, math.Inf(1)
	for _, s := range standardSizes {
		d := math.Abs(math.Log(ratio) - math.Log(float64(s.w)/float64(s.h)))
		if d < bestDist-1e-9 { // ties keep the earlier (square) size
			best, bestDist = s.size, d
		}
	}
	return best
}

// checkGPTImage2Size returns why w x h is not a size the gpt-image-2 family
// accepts, or "".
func checkGPTImage2Size(w, h int) string {
	switch {
	case w%sizeStep != 0 || h%sizeStep != 0:
		return fmt.Sprintf("width and height must both be divisible by 16 (try %dx%d)", roundTo(w, sizeStep), roundTo(h, sizeStep))
	case w > 3*h || h > 3*w:
		return "the aspect ratio must be between 1:3 and 3:1"
	case w*h > maxPixels:
		return "the largest size is 3840x2160 (8,294,400 pixels in total)"
	case w > maxEdge || h > maxEdge:
		return "neither side may be longer than 3840 pixels"
	}
	return ""
}

// sizeForAspect returns a gpt-image-2 size for aspect ratio w/h: 1024x1024
// for square, otherwise a long edge of 1536 and the short edge rounded to a
// multiple of 16 (16:9 gives 1536x864). Ratios beyond 3:1 are clamped.
func sizeForAspect(ratio float64) string {
	ratio = math.Max(1/maxAspect, math.Min(maxAspect, ratio))
	if math.Abs(ratio-1) < 1e-9 {
		return "1024x1024"
	}
	const long = 1536
	if ratio > 1 {
		return fmt.Sprintf("%dx%d", long, max(sizeStep, roundTo(int(math.Round(long/ratio)), sizeStep)))
	}
	return fmt.Sprintf("%dx%d", max(sizeStep, roundTo(int(math.Round(long*ratio)), sizeStep)), long)
}

func roundTo(v, step int) int {
	return max(step, (v+step/2)/step*step)
}
