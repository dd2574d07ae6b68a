package gptimage

import (
	"unicode/utf8"

	"github.com/easel-bot/easel/core"
)

// Token counts used to estimate a request's cost before it is sent. OpenAI
// bills image output by tokens, about proportional to the pixels made: a
// 1024x1024 image takes 272 tokens at low quality, 1056 at medium and 4160
// at high. The estimate errs on the high side, since it is what budgets are
// checked against: auto quality counts as high, auto size as 1536x1024 (the
// largest standard size), and each input image as much as a high-quality
// square output.
const (
	squarePixels = 1024 * 1024
	autoPixels   = 1536 * 1024
	lowTokens    = 272
	mediumTokens = 1056
	highTokens   = 4160
	// InputImageTokens is what one input image counts for.
	InputImageTokens = highTokens
)

// EstimateUsage returns about how many tokens the image model will use for
// req, from its quality, size, number of images, prompt (the text the image
// model is given) and number of input images, erring on the high side as
// the constants above say.
func EstimateUsage(req core.GenerateRequest, model, prompt string) core.Usage {
	var perSquare int64
	switch req.Flags.Quality {
	case "low":
		perSquare = lowTokens
	case "medium":
		perSquare = mediumTokens
	default: // high, or auto/unset, which may turn out high
		perSquare = highTokens
	}
	pixels := int64(autoPixels)
	if size, err := ResolveSize(model, req.Flags); err == nil && size != "auto" {
		if w, h, ok := ParseSize(size); ok {
			pixels = int64(w) * int64(h)
		}
	}
	inputs := int64(len(req.Inputs))
	if req.Base != nil {
		inputs++
	}
	return core.Usage{
		InputTextTokens:  int64(utf8.RuneCountInString(prompt)+3) / 4,
		InputImageTokens: inputs * InputImageTokens,
		OutputTokens:     int64(max(req.N, 1)) * perSquare * pixels / squarePixels,
	}
}
