package responses

import (
	"context"
	"fmt"
	"net/http"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

var (
	_ core.Describer         = (*Generator)(nil)
	_ core.DescribeEstimator = (*Generator)(nil)
)

// describeInstructions tell the conversation model what a describe asks.
const describeInstructions = `You write prompts for an image model. Look at the image and suggest up to 4 distinct prompts, each one to three sentences, that would make an image like it: name the subject, the composition, the style or medium, the light and the palette. Make them differ from each other in emphasis or style. Answer with the JSON object {"prompts": [...]} only.`

// describeText is the text sent beside the image.
const describeText = "Suggest up to 4 distinct prompts for an image like this one."

// describeFormat asks for the answer as {"prompts": [strings]}
// (Structured Outputs), which core.ParseSuggestions reads.
var describeFormat = responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{
	OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{
		Name:   "prompt_suggestions",
		Strict: oai.Bool(true),
		Schema: map[string]any{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []string{"prompts"},
			"properties": map[string]any{
				"prompts": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			},
		},
	},
}}

// describeOutputTokens is about how many tokens an answer of four prompts
// takes, for EstimateDescribe.
const describeOutputTokens = 400

// Describe asks the conversation model, which must read images, for up to
// four prompts that would make an image like img, as JSON. The request is
// not stored on OpenAI's side. It is retried, and its errors are classified,
// as Generate's are; an answer with no prompt in it is an Unavailable
// *core.Error. The cost is the conversation model's tokens at its price.
func (g *Generator) Describe(ctx context.Context, img core.Image) (core.Description, error) {
	c := &call{req: core.GenerateRequest{}}
	var out outcome
	_, err := g.retrier().Do(ctx, nil, func(ctx context.Context, n int, meta *wire.Meta) error {
		g.log.DebugContext(ctx, "openai-responses describe request", "model", g.cfg.Model, "image_bytes", len(img.Data), "attempt", n)
		var err error
		out, err = g.describeAttempt(ctx, c, img, meta)
		return err
	})
	if err != nil {
		return core.Description{}, err
	}
	suggestions, err := core.ParseSuggestions(out.text)
	if err != nil {
		return core.Description{}, core.WrapError(core.Unavailable, err, "OpenAI's answer held no prompt suggestions; try again")
	}
	return core.Description{Suggestions: suggestions, Model: g.cfg.Model, Usage: out.usage, CostUSD: g.price("", out.usage)}, nil
}

// describeAttempt makes one describe request and reads its answer.
func (g *Generator) describeAttempt(ctx context.Context, c *call, img core.Image, meta *wire.Meta) (outcome, error) {
	var raw *http.Response
	opts := []option.RequestOption{wire.Guard(), wire.Observe(meta), option.WithResponseBodyInto(&raw)}
	if _, err := g.responses.New(ctx, describeParams(g.cfg.Model, img), opts...); err != nil {
		return outcome{}, err
	}
	out, err := g.readResponse(c, raw)
	if err != nil {
		return outcome{}, fmt.Errorf("describe: %w", err)
	}
	return out, nil
}

// describeParams returns the body of a describe's POST /responses: the
// image and the ask, no tools, not stored.
func describeParams(model string, img core.Image) responses.ResponseNewParams {
	parts := responses.ResponseInputMessageContentListParam{
		imagePart(img),
		{OfInputText: &responses.ResponseInputTextParam{Text: describeText}},
	}
	return responses.ResponseNewParams{
		Model:        shared.ResponsesModel(model),
		Instructions: oai.String(describeInstructions),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{{OfMessage: &responses.EasyInputMessageParam{
			Role:    responses.EasyInputMessageRoleUser,
			Content: responses.EasyInputMessageContentUnionParam{OfInputItemContentList: parts},
		}}}},
		Text:  describeFormat,
		Store: oai.Bool(false),
	}
}

// EstimateDescribe returns about what a describe costs: the instructions,
// the text and one image read, and an answer of four prompts, at the
// conversation model's price (0 when it has none).
func (g *Generator) EstimateDescribe() float64 {
	chars := len(describeInstructions) + len(describeText)
	u := core.Usage{ConversationInputTokens: int64(chars+3)/4 + contextImageTokens, ConversationOutputTokens: describeOutputTokens}
	return g.price("", u)
}
