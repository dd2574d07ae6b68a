package gptimage

import "github.com/easel-bot/easel/core"

// Price is what a model costs, in US dollars per million tokens. An image
// model's output is images; a conversation model's is text.
type Price struct {
	TextInput  float64 // prompt text tokens
	ImageInput float64 // input image tokens (edits, images in a conversation)
	Output     float64 // output tokens
}

// Cost returns the cost in US dollars of usage at price p.
func (p Price) Cost(u core.Usage) float64 {
	return (float64(u.InputTextTokens)*p.TextInput +
		float64(u.InputImageTokens)*p.ImageInput +
		float64(u.OutputTokens)*p.Output) / 1e6
}

// DefaultPrices returns Easel's built-in price table, keyed by model name
// (dated snapshots such as gpt-image-2-2026-04-21 fall back to their undated
// name).
//
// These are estimates from OpenAI's published per-token image prices at the
// time of writing, meant for budgets and usage reports, not invoices.
// Operators should check them against https://openai.com/api/pricing and
// override them in the configuration when prices change.
func DefaultPrices() map[string]Price {
	return map[string]Price{
		"gpt-image-2":          {TextInput: 5, ImageInput: 8, Output: 30},
		"gpt-image-1.5":        {TextInput: 5, ImageInput: 8, Output: 32},
		"gpt-image-1-mini":     {TextInput: 2, ImageInput: 2.5, Output: 8},
		"chatgpt-image-latest": {TextInput: 5, ImageInput: 8, Output: 32},
	}
}

// PriceOf returns the price of model in prices, trying its undated name for
// snapshots (gpt-image-2-2026-04-21 costs what gpt-image-2 does).
func PriceOf(prices map[string]Price, model string) (Price, bool) {
	if p, ok := prices[model]; ok {
		return p, true
	}
	p, ok := prices[Undated(model)]
	return p, ok
}
