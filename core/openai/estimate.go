package openai

import (
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
)

var _ core.CostEstimator = (*Generator)(nil)

// EstimateCost returns about what req will cost in US dollars, from the
// price table and the request's model, quality, size, number of images,
// prompt length and number of input images, without calling OpenAI. It errs
// on the high side: auto quality counts as high, auto size as 1536x1024 and
// each input image as a high-quality square output. It returns 0 for a model
// missing from the price table, as the recorded cost of such a request is 0
// too.
func (g *Generator) EstimateCost(req core.GenerateRequest) float64 {
	model := g.modelFor(req)
	p, ok := gptimage.PriceOf(g.cfg.Prices, model)
	if !ok {
		return 0
	}
	return p.Cost(gptimage.EstimateUsage(req, model, req.FullPrompt()))
}
