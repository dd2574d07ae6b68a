package openai

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
	squarePixels     = 1024 * 1024
	autoPixels       = 1536 * 1024
	lowTokens        = 272
	mediumTokens     = 1056
	highTokens       = 4160
	inputImageTokens = highTokens
)

var _ core.CostEstimator = (*Generator)(nil)

// EstimateCost returns about what req will cost in US dollars, from the
// price table and the request's model, quality, size, number of images,
// prompt length and number of input images, without calling OpenAI. It
// returns 0 for a model missing from the price table, as the recorded cost
// of such a request is 0 too.
func (g *Generator) EstimateCost(req core.GenerateRequest) float64 {
	model := g.modelFor(req)
	p, ok := g.price(model)
	if !ok {
		return 0
	}
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
	if size, err := resolveSize(model, req.Flags); err == nil && size != "auto" {
		if w, h, ok := parseSize(size); ok {
			pixels = int64(w) * int64(h)
		}
	}
	inputs := int64(len(req.Inputs))
	if req.Base != nil {
		inputs++
	}
	u := core.Usage{
		InputTextTokens:  int64(utf8.RuneCountInString(req.FullPrompt())+3) / 4,
		InputImageTokens: inputs * inputImageTokens,
		OutputTokens:     int64(max(req.N, 1)) * perSquare * pixels / squarePixels,
	}
	return p.Cost(u)
}
