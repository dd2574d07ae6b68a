package openai

import (
	"context"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
)

// Price is what a model costs, in US dollars per million tokens: TextInput
// for prompt text, ImageInput for input images, Output for what the model
// makes. Its Cost method returns the cost of a core.Usage.
type Price = gptimage.Price

// DefaultPrices returns Easel's built-in price table, keyed by model name
// (dated snapshots such as gpt-image-2-2026-04-21 fall back to their undated
// name).
//
// These are estimates from OpenAI's published per-token image prices at the
// time of writing, meant for budgets and usage reports, not invoices.
// Operators should check them against https://openai.com/api/pricing and
// override them in the configuration when prices change.
func DefaultPrices() map[string]Price { return gptimage.DefaultPrices() }

// cost estimates what usage of model cost, from the price table.
func (g *Generator) cost(ctx context.Context, model string, u core.Usage) float64 {
	p, ok := gptimage.PriceOf(g.cfg.Prices, model)
	if !ok {
		g.log.DebugContext(ctx, "openai: no price for model; cost counted as 0", "model", model)
		return 0
	}
	return p.Cost(u)
}
