package responses

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
)

// modelFor returns the image model a request uses: req.Model, else the
// --model flag, else the configured default.
func (g *Generator) modelFor(req core.GenerateRequest) string {
	for _, m := range []string{req.Model, req.Flags.Model} {
		if m = strings.TrimSpace(m); m != "" {
			return m
		}
	}
	return g.cfg.ImageModel
}

// CheckRequest reports, without calling OpenAI, whether req can be served.
// The image tool takes what the Images API does, so it returns the Invalid
// *core.Error that openai.Generator.CheckRequest returns for the same
// flags, model and inputs (the message's length is checked, not the
// thread's). A mask (a region edit) must be a PNG and have an image to
// apply to.
func (g *Generator) CheckRequest(req core.GenerateRequest) error {
	return gptimage.Check(req, g.modelFor(req), message(req))
}

// DefaultPrices returns the built-in price table of this provider: the
// Images API provider's image models (openai.DefaultPrices) and the
// conversation models, in US dollars per million tokens. A conversation
// model's input images cost what its text input does.
//
// These are estimates from OpenAI's published prices at the time of
// writing, for budgets and usage reports, not invoices; operators should
// check them against https://openai.com/api/pricing.
func DefaultPrices() map[string]openai.Price {
	prices := openai.DefaultPrices()
	prices["gpt-5.5"] = openai.Price{TextInput: 5, ImageInput: 5, Output: 30}
	prices["gpt-5.4-mini"] = openai.Price{TextInput: 0.75, ImageInput: 0.75, Output: 4.5}
	return prices
}

// Token counts of the conversation model used to estimate a request's cost
// before it is sent, erring on the high side: each image in the
// conversation counts as a 1536x1024 image at high detail (tiled as OpenAI
// does: 85 + 170 per 512-pixel tile), and each request writes 1,000 tokens
// (its reasoning, the call to the image model and any words).
const (
	contextImageTokens = 85 + 170*6
	outputTokens       = 1000
)

var _ core.CostEstimator = (*Generator)(nil)

// EstimateCost returns about what req will cost in US dollars, without
// calling OpenAI: for each image asked for, one request of the
// conversation model, which reads the instructions, the thread's text and
// its images again (every image made on the way, of which the image being
// refined is the last, and the attachments), and one image, estimated as the Images API
// provider does (auto quality as high, auto size as 1536x1024). A model
// missing from the price table costs 0.
func (g *Generator) EstimateCost(req core.GenerateRequest) float64 {
	model := g.modelFor(req)
	chars := utf8.RuneCountInString(instructions + fallbackNote + message(req))
	var made int64 // each prompt answered with an image left one in the conversation
	for _, ex := range req.Conversation {
		chars += utf8.RuneCountInString(ex.Prompt + ex.Answer)
		if ex.Answer == "" {
			made++
		}
	}
	if req.Base != nil {
		made = max(made, 1) // the image being refined is the last made, or sent alone
	}
	images := made + int64(len(req.Inputs))
	one := req
	one.N = 1
	u := gptimage.EstimateUsage(one, model, message(req))
	u.ConversationInputTokens = int64(chars+3)/4 + images*contextImageTokens
	u.ConversationOutputTokens = outputTokens
	return float64(max(req.N, 1)) * g.price(model, u)
}

// cost estimates what usage cost, from the price table, logging models
// without a price.
func (g *Generator) cost(ctx context.Context, imageModel string, u core.Usage) float64 {
	for _, m := range []string{g.cfg.Model, imageModel} {
		if _, ok := gptimage.PriceOf(g.cfg.Prices, m); !ok {
			g.log.DebugContext(ctx, "openai-responses: no price for model; its tokens counted as 0", "model", m)
		}
	}
	return g.price(imageModel, u)
}

// price returns what usage costs: the conversation model's tokens at its
// price, the image model's at imageModel's. Models missing from the price
// table cost 0.
func (g *Generator) price(imageModel string, u core.Usage) float64 {
	var usd float64
	if p, ok := gptimage.PriceOf(g.cfg.Prices, g.cfg.Model); ok {
		usd += p.Cost(core.Usage{InputTextTokens: u.ConversationInputTokens, OutputTokens: u.ConversationOutputTokens})
	}
	if p, ok := gptimage.PriceOf(g.cfg.Prices, imageModel); ok {
		usd += p.Cost(core.Usage{InputTextTokens: u.InputTextTokens, InputImageTokens: u.InputImageTokens, OutputTokens: u.OutputTokens})
	}
	return usd
}
