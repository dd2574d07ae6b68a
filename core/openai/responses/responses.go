// Package responses is Easel's conversational image provider,
// "openai-responses": OpenAI's Responses API (POST /responses) with the
// image_generation tool, through the official Go SDK
// (github.com/openai/openai-go/v3). It implements core.Generator,
// core.RequestChecker and core.CostEstimator.
//
// A conversation model (Config.Model, a GPT model) reads the thread and
// either calls the image model with what it understood, editing the latest
// image of the conversation, or answers in words: a question about the
// picture, or one of its own before it draws. Each answer is stored by
// OpenAI (unless Config.Store is off) and a later request continues it with
// previous_response_id (core.GenerateRequest.PreviousResponseID): only the
// new message and its attachments are sent. When OpenAI no longer has that
// response (it expired, or was never stored), the request is sent again
// without it, carrying the thread's text and the image being refined
// instead; users are not told.
//
// The image tool takes the same flags as the Images API provider, checked
// the same way; errors have the same classes, messages and retry rules
// (core/openai/internal/wire). Output bytes are returned exactly as OpenAI
// sent them, so embedded C2PA provenance survives.
package responses

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// Defaults used by DefaultConfig and for zero Config fields. The others
// are the Images API provider's (openai.DefaultTimeout and so on).
const (
	// DefaultModel is the conversation model.
	DefaultModel = "gpt-5.5"
	// DefaultImageModel is the image model the conversation model calls.
	DefaultImageModel = openai.DefaultModel
)

// Config configures a Generator. Its settings besides Model and Store mean
// what openai.Config's do.
type Config struct {
	// APIKey is the OpenAI API key. Required.
	APIKey string
	// BaseURL is the API base; empty means OPENAI_BASE_URL, else OpenAI's.
	BaseURL string
	// Model is the conversation model: a GPT model that reads the thread,
	// answers in words or calls the image model. Empty means DefaultModel.
	Model string
	// ImageModel is the image model used when a request names none.
	// Empty means DefaultImageModel.
	ImageModel string
	// Store keeps each answer on OpenAI's side, so the next turn sends only
	// its new message (previous_response_id). Without it every turn sends
	// the thread's text and the image being refined.
	Store bool
	// Timeout bounds each HTTP attempt, streaming included. Zero means
	// openai.DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a transient failure is retried.
	MaxRetries int
	// Stream asks for partial images while a single image renders.
	Stream bool
	// PartialImages is how many partial images to ask for, 0 to 3.
	PartialImages int
	// Moderation is the image tool's moderation: "auto", "low" or "".
	Moderation string
	// Prices maps model names, the conversation model's and the image
	// models', to prices. Nil means DefaultPrices().
	Prices map[string]openai.Price
	// HTTPClient, if set, sends the requests.
	HTTPClient *http.Client
	// Logger receives retries at Info and request details at Debug; never
	// prompts, answers or keys. Nil discards.
	Logger *slog.Logger
	// RetryBaseDelay and RetryMaxDelay shape the backoff between attempts,
	// as in openai.Config.
	RetryBaseDelay, RetryMaxDelay time.Duration
}

// DefaultConfig returns a Config with Easel's defaults and no API key.
func DefaultConfig() Config {
	return Config{
		Model:          DefaultModel,
		ImageModel:     DefaultImageModel,
		Store:          true,
		Timeout:        openai.DefaultTimeout,
		MaxRetries:     openai.DefaultMaxRetries,
		Stream:         true,
		PartialImages:  openai.DefaultPartialImages,
		Moderation:     "auto",
		Prices:         DefaultPrices(),
		RetryBaseDelay: openai.DefaultRetryBaseDelay,
		RetryMaxDelay:  openai.DefaultRetryMaxDelay,
	}
}

// instructions tell the conversation model its job. They are sent with
// every request: OpenAI does not carry them over from a previous response.
const instructions = `You are Easel, an image-making assistant in a team chat thread. Every user message is about one picture in progress.
- When the user asks for a picture, or for a change to it, call the image_generation tool once. Edit the latest image of the conversation unless the user asks for something new, and keep everything they did not ask to change.
- When the user asks a question about the picture, or you must know something before you can draw, answer in words, briefly, without calling the tool.
- Size, quality, format and background are set on the tool; do not ask about them. After drawing, do not describe the image.`

// fallbackNote is added to the instructions when the thread is resent with
// the image being refined.
const fallbackNote = "\nThe first image of the user's last message is the picture as it stands; the earlier messages are the thread so far."

// Generator makes images, and answers in words, with OpenAI's Responses
// API. It is safe for concurrent use.
type Generator struct {
	responses responses.ResponseService
	cfg       Config
	log       *slog.Logger

	// Seams for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rnd   func(n int64) int64
}

var (
	_ core.Generator      = (*Generator)(nil)
	_ core.RequestChecker = (*Generator)(nil)
	_ core.CostEstimator  = (*Generator)(nil)
)

// New returns a Generator for cfg. It returns an error if the API key is
// missing, the conversation model is an image model, the image model is
// retired (gpt-image-1, dall-e-*), or a setting is out of range.
func New(cfg Config) (*Generator, error) {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	if cfg.APIKey == "" {
		return nil, errors.New("openai-responses: an API key is required (set OPENAI_API_KEY)")
	}
	cfg.Model = strings.TrimSpace(cfg.Model)
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if why := ConversationModelProblem(cfg.Model); why != "" {
		return nil, fmt.Errorf("openai-responses: %s", why)
	}
	cfg.ImageModel = strings.TrimSpace(cfg.ImageModel)
	if cfg.ImageModel == "" {
		cfg.ImageModel = DefaultImageModel
	}
	if why := gptimage.Retired(cfg.ImageModel); why != "" {
		return nil, fmt.Errorf("openai-responses: %s", why)
	}
	switch {
	case cfg.MaxRetries < 0:
		return nil, fmt.Errorf("openai-responses: max retries must be 0 or more, not %d", cfg.MaxRetries)
	case cfg.PartialImages < 0 || cfg.PartialImages > 3:
		return nil, fmt.Errorf("openai-responses: partial images must be between 0 and 3, not %d", cfg.PartialImages)
	case cfg.Moderation != "" && cfg.Moderation != "auto" && cfg.Moderation != "low":
		return nil, fmt.Errorf("openai-responses: moderation must be \"auto\" or \"low\", not %q", cfg.Moderation)
	case cfg.Timeout < 0:
		return nil, errors.New("openai-responses: timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = openai.DefaultTimeout
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = openai.DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = openai.DefaultRetryMaxDelay
	}
	if cfg.Prices == nil {
		cfg.Prices = DefaultPrices()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []option.RequestOption{
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0), // Easel retries itself: see wire.Retrier
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	client := oai.NewClient(opts...)
	return &Generator{
		responses: client.Responses,
		cfg:       cfg,
		log:       log.With("provider", "openai-responses"),
		now:       time.Now,
		sleep:     wire.Sleep,
		rnd:       wire.RandInt64N,
	}, nil
}

// ConversationModelProblem returns why model cannot be the conversation
// model, or "": image models cannot read a conversation.
func ConversationModelProblem(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	if strings.HasPrefix(m, "gpt-image") || strings.HasPrefix(m, "dall-e") || strings.HasPrefix(m, "chatgpt-image") {
		return fmt.Sprintf("%s is an image model; the conversation model must be a GPT model such as %s, which calls the image model", model, DefaultModel)
	}
	return ""
}

// Model returns the conversation model.
func (g *Generator) Model() string { return g.cfg.Model }

// call is a request resolved into what is sent to OpenAI.
type call struct {
	imageModel string
	message    string // the user's message as sent
	n          int
	size       string // "auto" or WIDTHxHEIGHT
	quality    string // "" for OpenAI's default
	format     string // requested output format, "" for png
	action     string // "generate" or "edit"
	stream     bool
	req        core.GenerateRequest
}

// resolve checks req and works out the calls for it.
func (g *Generator) resolve(req core.GenerateRequest) (*call, error) {
	if err := g.CheckRequest(req); err != nil {
		return nil, err
	}
	c := &call{
		imageModel: g.modelFor(req),
		message:    message(req),
		n:          max(1, req.N),
		quality:    req.Flags.Quality,
		format:     req.Flags.Format,
		action:     "generate",
		req:        req,
	}
	if c.quality == "" && req.Kind == core.KindHighQuality {
		c.quality = "high"
	}
	if req.Base != nil || len(req.Inputs) > 0 {
		c.action = "edit"
	}
	c.size, _ = gptimage.ResolveSize(c.imageModel, req.Flags) // checked by CheckRequest
	c.stream = g.cfg.Stream && c.n == 1 && g.cfg.PartialImages > 0
	return c, nil
}

// message returns the user's message for req: the prompt (for high quality,
// and for regenerating a high-quality version, whose turn had no prompt,
// the instruction to re-render), with things to avoid.
func message(req core.GenerateRequest) string {
	text := req.Prompt
	if req.Kind == core.KindHighQuality || (strings.TrimSpace(text) == "" && req.Base != nil) {
		text = "Re-render this exact image at higher quality and resolution. Keep the composition, subjects, colours and any text identical."
	}
	if note := req.RegionNote(); note != "" {
		text += "\n" + note
	}
	if req.Flags.Avoid != "" {
		text += "\nAvoid: " + req.Flags.Avoid
	}
	return text
}

// Generate answers req: with images, each from its own request to OpenAI
// continuing the same point of the conversation, or with words only (a
// Result with Text and no images). Each image's Details name the response
// that made it and its revised prompt; an answer in words names its
// response in Result.ResponseID (both "" without Config.Store).
//
// A request continuing a stored response OpenAI no longer has is sent
// again at once with the thread's text and the image being refined. Other
// failures are retried as the Images API provider's are (see
// wire.Retrier). req.Attempt, if set, is called before each request is
// sent, all requests counted from 1; if it returns an error nothing more is
// sent and Generate returns that error. Other errors are *core.Error values
// with the Images API provider's kinds and messages; an image call the
// safety system blocked is Refused. When several images were asked for and
// a later request fails, the images made so far are returned. Progress, if
// set, is called from this goroutine with partial images.
func (g *Generator) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	c, err := g.resolve(req)
	if err != nil {
		return core.Result{}, err
	}
	res := core.Result{Model: c.imageModel}
	attempts, partials := 0, 0
	for i := range c.n {
		out, err := g.call(ctx, c, &attempts, &partials)
		if err != nil {
			if len(res.Images) > 0 {
				g.log.WarnContext(ctx, "openai-responses: returning the images made before a request failed", "made", len(res.Images), "asked", c.n, "error", err)
				break
			}
			return core.Result{Model: c.imageModel, Attempts: attempts}, err
		}
		res.Usage = res.Usage.Add(out.usage)
		id := out.id
		if !g.cfg.Store {
			id = ""
		}
		for j, img := range out.images {
			res.Images = append(res.Images, img)
			res.Details = append(res.Details, core.ImageDetail{ResponseID: id, RevisedPrompt: out.revised[j]})
		}
		if i == 0 {
			res.Text = out.text
			if len(out.images) == 0 {
				res.ResponseID = id
			}
		}
		if len(out.images) == 0 {
			break // answered in words: asking again would get the same answer
		}
	}
	if len(res.Images) == 0 {
		res.Model = g.cfg.Model
	}
	res.Attempts = attempts
	res.CostUSD = g.cost(ctx, c.imageModel, res.Usage)
	return res, nil
}

// call makes one request to OpenAI and its retries, continuing the
// request's stored response if there is one, or else (and when OpenAI no
// longer has it) sending the thread. *attempts counts the requests sent
// before; *partials the partial images passed on.
func (g *Generator) call(ctx context.Context, c *call, attempts, partials *int) (outcome, error) {
	prev := c.req.PreviousResponseID
	if !g.cfg.Store {
		prev = ""
	}
	for {
		var out outcome
		before := *attempts
		report := func(n int) error {
			if c.req.Attempt == nil {
				return nil
			}
			return c.req.Attempt(before + n)
		}
		made, err := g.retrier().Do(ctx, report, func(ctx context.Context, n int, meta *wire.Meta) error {
			g.log.DebugContext(ctx, "openai-responses request", "model", g.cfg.Model, "image_model", c.imageModel,
				"action", c.action, "size", c.size, "quality", c.quality, "stream", c.stream, "continues", prev != "",
				"inputs", len(c.req.Inputs), "base", c.req.Base != nil, "mask", c.req.Mask != nil, "message_chars", len(c.message), "attempt", before+n)
			var err error
			out, err = g.attempt(ctx, c, prev, meta, partials)
			return err
		})
		*attempts += made
		if err != nil && prev != "" && previousGone(err) {
			g.log.InfoContext(ctx, "openai-responses: the stored conversation is gone; sending the thread instead", "previous", prev)
			prev = ""
			continue
		}
		return out, err
	}
}

// previousGone reports whether err is OpenAI saying that the response a
// request continued is not stored (expired, or never stored).
func previousGone(err error) bool {
	var ae *wire.APIError
	return errors.As(err, &ae) && ae.Status < 500 &&
		(ae.Code == "previous_response_not_found" || ae.Param == "previous_response_id")
}

// retrier returns the retry rules of g's configuration.
func (g *Generator) retrier() *wire.Retrier {
	return &wire.Retrier{
		Name:       "openai-responses",
		MaxRetries: g.cfg.MaxRetries,
		Timeout:    g.cfg.Timeout,
		BaseDelay:  g.cfg.RetryBaseDelay,
		MaxDelay:   g.cfg.RetryMaxDelay,
		Classifier: wire.Classifier{APIKey: g.cfg.APIKey, Now: g.now},
		Log:        g.log,
		Sleep:      g.sleep,
		Rnd:        g.rnd,
		Now:        g.now,
	}
}

// attempt makes one HTTP request, continuing prev unless it is "", and
// reads its answer. meta receives the status and headers of the answer.
func (g *Generator) attempt(ctx context.Context, c *call, prev string, meta *wire.Meta, partials *int) (outcome, error) {
	// The body is read here, not by the SDK: see wire.ReadAnswer.
	var raw *http.Response
	opts := []option.RequestOption{wire.Guard(), wire.Observe(meta), option.WithResponseBodyInto(&raw)}
	if c.stream {
		opts = append(opts, option.WithJSONSet("stream", true))
	}
	if _, err := g.responses.New(ctx, g.params(c, prev), opts...); err != nil {
		return outcome{}, err
	}
	if c.stream {
		return g.readStream(c, raw, partials)
	}
	return g.readResponse(c, raw)
}

// params returns the body of POST /responses: the conversation model, the
// instructions, the image tool with the request's flags, and the input:
// with prev, the new message (and its attachments) only; without, the
// thread's text, then the message with the image being refined and the
// attachments.
func (g *Generator) params(c *call, prev string) responses.ResponseNewParams {
	req := c.req
	tool := responses.ToolImageGenerationParam{
		Model:  c.imageModel,
		Size:   c.size,
		Action: c.action,
	}
	if c.quality != "" {
		tool.Quality = c.quality
	}
	if c.format != "" {
		tool.OutputFormat = c.format
	}
	if req.Flags.Transparent {
		tool.Background = "transparent"
	}
	if g.cfg.Moderation != "" {
		tool.Moderation = g.cfg.Moderation
	}
	if req.Base != nil && gptimage.SupportsInputFidelity(c.imageModel) {
		// Keep faces, logos and text of the image being refined.
		tool.InputFidelity = "high"
	}
	if c.stream {
		tool.PartialImages = oai.Int(int64(g.cfg.PartialImages))
	}
	if m := req.Mask; m != nil {
		// A region edit: the mask applies to the image being edited, the
		// latest of the conversation (or the base image resent with it).
		tool.InputImageMask = responses.ToolImageGenerationInputImageMaskParam{ImageURL: oai.String(dataURL(*m))}
	}

	var input responses.ResponseInputParam
	var parts responses.ResponseInputMessageContentListParam
	note := ""
	if prev == "" {
		for _, ex := range req.Conversation {
			input = append(input, textMessage(responses.EasyInputMessageRoleUser, ex.Prompt))
			if ex.Answer != "" {
				input = append(input, textMessage(responses.EasyInputMessageRoleAssistant, ex.Answer))
			}
		}
		if req.Base != nil {
			parts = append(parts, imagePart(*req.Base))
			note = fallbackNote
		}
	}
	for _, in := range req.Inputs {
		parts = append(parts, imagePart(in))
	}
	parts = append(parts, responses.ResponseInputContentUnionParam{OfInputText: &responses.ResponseInputTextParam{Text: c.message}})
	input = append(input, responses.ResponseInputItemUnionParam{OfMessage: &responses.EasyInputMessageParam{
		Role:    responses.EasyInputMessageRoleUser,
		Content: responses.EasyInputMessageContentUnionParam{OfInputItemContentList: parts},
	}})

	p := responses.ResponseNewParams{
		Model:        shared.ResponsesModel(g.cfg.Model),
		Instructions: oai.String(instructions + note),
		Input:        responses.ResponseNewParamsInputUnion{OfInputItemList: input},
		Tools:        []responses.ToolUnionParam{{OfImageGeneration: &tool}},
		Store:        oai.Bool(g.cfg.Store),
	}
	if prev != "" {
		p.PreviousResponseID = oai.String(prev)
	}
	return p
}

// textMessage returns an input message of role with text.
func textMessage(role responses.EasyInputMessageRole, text string) responses.ResponseInputItemUnionParam {
	return responses.ResponseInputItemUnionParam{OfMessage: &responses.EasyInputMessageParam{
		Role:    role,
		Content: responses.EasyInputMessageContentUnionParam{OfString: oai.String(text)},
	}}
}

// imagePart returns im as an input image: a base64 data URL, built in one
// allocation (an image of a few MB would otherwise be copied three times).
func imagePart(im core.Image) responses.ResponseInputContentUnionParam {
	return responses.ResponseInputContentUnionParam{OfInputImage: &responses.ResponseInputImageParam{
		Detail:   responses.ResponseInputImageDetailAuto,
		ImageURL: oai.String(dataURL(im)),
	}}
}

// dataURL returns im as a base64 data URL.
func dataURL(im core.Image) string {
	prefix := "data:" + gptimage.ImageMIME(im) + ";base64,"
	var url strings.Builder
	url.Grow(len(prefix) + base64.StdEncoding.EncodedLen(len(im.Data)))
	url.WriteString(prefix)
	enc := base64.NewEncoder(base64.StdEncoding, &url)
	_, _ = enc.Write(im.Data) // a strings.Builder does not fail
	_ = enc.Close()
	return url.String()
}
