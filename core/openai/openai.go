// Package openai is Easel's image provider for OpenAI's Images API: it
// implements core.Generator and core.RequestChecker with the official Go SDK
// (github.com/openai/openai-go/v3).
//
// Fresh generations go to POST /images/generations; anything with an input
// image (a refinement's base, attachments, a mask) goes to POST /images/edits
// as multipart. With streaming enabled, partial images are passed to the
// request's Progress callback as they arrive. Output bytes are returned
// exactly as OpenAI sent them, so embedded C2PA provenance survives.
//
// Retries are Easel's own, not the SDK's (which would also retry a 429 that
// means the account is out of credits): only rate limits, 500/502/503/504,
// dropped connections, truncated answers and mid-stream errors are retried,
// honouring Retry-After. Every failure is a *core.Error whose message can be
// shown in a chat; the API key never appears in any error text.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Defaults used by DefaultConfig and for zero Config fields.
const (
	DefaultModel          = "gpt-image-2"
	DefaultTimeout        = 3 * time.Minute
	DefaultMaxRetries     = 2
	DefaultPartialImages  = 2
	DefaultRetryBaseDelay = 500 * time.Millisecond
	DefaultRetryMaxDelay  = 30 * time.Second
)

// Config configures a Generator.
type Config struct {
	// APIKey is the OpenAI API key. Required.
	APIKey string
	// BaseURL is the API base, such as "https://api.openai.com/v1" (proxies,
	// gateways and fakes have others). Empty means OPENAI_BASE_URL from the
	// environment, else OpenAI's.
	BaseURL string
	// Model is used when a request names none. Empty means DefaultModel.
	Model string
	// Timeout bounds each HTTP attempt, streaming included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a transient failure is retried: a request
	// makes at most 1+MaxRetries attempts. Zero means no retries; negative
	// values are rejected.
	MaxRetries int
	// Stream asks for partial images while a single image renders (requests
	// for several images never stream).
	Stream bool
	// PartialImages is how many partial images to ask for when streaming,
	// 0 to 3. Streaming is used only when it is above zero.
	PartialImages int
	// Moderation is the moderation level of generations: "auto" (OpenAI's
	// default) or "low"; empty leaves OpenAI's default. The edits endpoint has
	// no such parameter, so it is not sent there.
	Moderation string
	// Prices maps model names to prices for cost estimates. Nil means
	// DefaultPrices(); models missing from the table cost 0.
	Prices map[string]Price
	// HTTPClient, if set, sends the requests (its Timeout, if any, applies on
	// top of Timeout).
	HTTPClient *http.Client
	// Logger receives retries at Info and request details at Debug. Prompts
	// and keys are never logged. Nil discards.
	Logger *slog.Logger
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff between
	// attempts when OpenAI does not say how long to wait: retry k waits a
	// uniformly random time up to min(RetryBaseDelay·2^(k-1), RetryMaxDelay).
	// Zero means DefaultRetryBaseDelay and DefaultRetryMaxDelay. A wait
	// OpenAI asks for (Retry-After) is honoured, plus up to a fifth more of
	// jitter, capped at RetryMaxDelay; one longer than RetryMaxDelay is not
	// waited for: the error is returned at once.
	RetryBaseDelay, RetryMaxDelay time.Duration
}

// DefaultConfig returns a Config with Easel's defaults and no API key.
func DefaultConfig() Config {
	return Config{
		Model:          DefaultModel,
		Timeout:        DefaultTimeout,
		MaxRetries:     DefaultMaxRetries,
		Stream:         true,
		PartialImages:  DefaultPartialImages,
		Moderation:     "auto",
		Prices:         DefaultPrices(),
		RetryBaseDelay: DefaultRetryBaseDelay,
		RetryMaxDelay:  DefaultRetryMaxDelay,
	}
}

// Generator makes images with OpenAI's Images API. It is safe for
// concurrent use.
type Generator struct {
	images oai.ImageService
	cfg    Config
	log    *slog.Logger

	// Seams for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	rnd   func(n int64) int64
}

var (
	_ core.Generator      = (*Generator)(nil)
	_ core.RequestChecker = (*Generator)(nil)
)

// New returns a Generator for cfg. It returns an error if the API key is
// missing, the default model is retired (gpt-image-1, dall-e-*), or a
// setting is out of range.
func New(cfg Config) (*Generator, error) {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	if cfg.APIKey == "" {
		return nil, errors.New("openai: an API key is required (set OPENAI_API_KEY)")
	}
	cfg.Model = strings.TrimSpace(cfg.Model)
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if why := gptimage.Retired(cfg.Model); why != "" {
		return nil, fmt.Errorf("openai: %s", why)
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("openai: max retries must be 0 or more, not %d", cfg.MaxRetries)
	}
	if cfg.PartialImages < 0 || cfg.PartialImages > 3 {
		return nil, fmt.Errorf("openai: partial images must be between 0 and 3, not %d", cfg.PartialImages)
	}
	switch cfg.Moderation {
	case "", "auto", "low":
	default:
		return nil, fmt.Errorf("openai: moderation must be \"auto\" or \"low\", not %q", cfg.Moderation)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("openai: timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
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
		// Easel retries itself: the SDK would also retry a 429
		// insufficient_quota, which waiting never fixes.
		option.WithMaxRetries(0),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.HTTPClient == nil {
		// net/http keeps 2 idle connections per host by default; turns
		// rendering at once would each open (and close) one of their own.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	client := oai.NewClient(opts...)

	return &Generator{
		images: client.Images,
		cfg:    cfg,
		log:    log.With("provider", "openai"),
		now:    time.Now,
		sleep:  wire.Sleep,
		rnd:    wire.RandInt64N,
	}, nil
}

// Model returns the model used for requests that name none.
func (g *Generator) Model() string { return g.cfg.Model }

// call is a request resolved into what is sent to OpenAI.
type call struct {
	model   string
	prompt  string
	n       int
	size    string // "auto" or WIDTHxHEIGHT
	quality string // "" for OpenAI's default
	format  string // requested output format, "" for png
	edit    bool
	stream  bool
	req     core.GenerateRequest
}

// resolve checks req and works out the call for it.
func (g *Generator) resolve(req core.GenerateRequest) (*call, error) {
	if err := g.CheckRequest(req); err != nil {
		return nil, err
	}
	c := &call{
		model:   g.modelFor(req),
		prompt:  req.FullPrompt(),
		n:       max(1, req.N),
		quality: req.Flags.Quality,
		format:  req.Flags.Format,
		edit:    req.Base != nil || len(req.Inputs) > 0,
		req:     req,
	}
	if c.quality == "" && req.Kind == core.KindHighQuality {
		c.quality = "high"
	}
	c.size, _ = gptimage.ResolveSize(c.model, req.Flags) // checked by CheckRequest
	c.stream = g.cfg.Stream && c.n == 1 && g.cfg.PartialImages > 0
	return c, nil
}

// Generate makes the images req asks for. Requests with a base image,
// attachments or a mask are edits; others are generations.
//
// Transient failures (rate limits, 500/502/503/504, dropped connections,
// timeouts, truncated answers, error events mid-stream) are retried up to
// MaxRetries times after a jittered exponential backoff, or the wait OpenAI
// asks for; never for longer than RetryMaxDelay per wait, nor past ctx's
// deadline. Without a deadline on ctx, Generate thus returns within
// (1+MaxRetries)·Timeout + MaxRetries·RetryMaxDelay.
//
// req.Attempt, if set, is called before each request is sent, retries
// included; if it returns an error nothing more is sent and Generate returns
// that error unchanged. Other errors are *core.Error values: Invalid for a
// request OpenAI cannot serve (checked first with CheckRequest, then as
// OpenAI reports it), Refused for moderation, Quota for billing limits,
// RateLimited when rate limits outlast the retries, Unavailable for outages,
// timeouts, dropped connections, truncated answers, a rejected API key and
// cancellation (which also matches ctx.Err() with errors.Is). The Result
// returned with an error still carries Attempts, the requests sent. Progress,
// if set, is called from this goroutine with partial images whose Index
// increases across retries.
func (g *Generator) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	c, err := g.resolve(req)
	if err != nil {
		return core.Result{}, err
	}
	partials := 0
	var res core.Result
	attempts, err := g.retrier().Do(ctx, req.Attempt, func(ctx context.Context, attempt int, meta *wire.Meta) error {
		g.log.DebugContext(ctx, "openai request", "endpoint", c.endpoint(), "model", c.model,
			"size", c.size, "quality", c.quality, "n", c.n, "stream", c.stream,
			"inputs", len(req.Inputs), "base", req.Base != nil, "mask", req.Mask != nil,
			"prompt_chars", len(c.prompt), "attempt", attempt)
		var err error
		res, err = g.attempt(ctx, c, meta, &partials)
		return err
	})
	if err != nil {
		return core.Result{Model: c.model, Attempts: attempts}, err
	}
	res.Model = c.model
	res.Attempts = attempts
	res.CostUSD = g.cost(ctx, c.model, res.Usage)
	return res, nil
}

// retrier returns the retry rules of g's configuration.
func (g *Generator) retrier() *wire.Retrier {
	return &wire.Retrier{
		Name:       "openai",
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

func (c *call) endpoint() string {
	if c.edit {
		return "images/edits"
	}
	return "images/generations"
}

// attempt makes one HTTP request (and reads its answer) with ctx, which
// bounds the attempt. meta receives the status and headers of the answer.
func (g *Generator) attempt(ctx context.Context, c *call, meta *wire.Meta, partials *int) (core.Result, error) {
	// The body is read here, not by the SDK: see wire.ReadAnswer.
	var raw *http.Response
	opts := []option.RequestOption{wire.Guard(), wire.Observe(meta), option.WithResponseBodyInto(&raw)}
	var err error
	if c.edit {
		p := g.editParams(c)
		if c.stream {
			p.SetExtraFields(map[string]any{"stream": "true"})
		}
		_, err = g.images.Edit(ctx, p, opts...)
	} else {
		if c.stream {
			opts = append(opts, option.WithJSONSet("stream", true))
		}
		_, err = g.images.Generate(ctx, g.generateParams(c), opts...)
	}
	if err != nil {
		return core.Result{}, err
	}
	if c.stream {
		return g.readStream(c, raw, partials)
	}
	return g.readResponse(c, raw)
}

// generateParams returns the body of POST /images/generations.
func (g *Generator) generateParams(c *call) oai.ImageGenerateParams {
	p := oai.ImageGenerateParams{
		Prompt: c.prompt,
		Model:  c.model,
		N:      oai.Int(int64(c.n)),
		Size:   oai.ImageGenerateParamsSize(c.size),
	}
	if c.quality != "" {
		p.Quality = oai.ImageGenerateParamsQuality(c.quality)
	}
	if c.format != "" {
		p.OutputFormat = oai.ImageGenerateParamsOutputFormat(c.format)
	}
	if c.req.Flags.Transparent {
		p.Background = oai.ImageGenerateParamsBackgroundTransparent
	}
	if g.cfg.Moderation != "" {
		p.Moderation = oai.ImageGenerateParamsModeration(g.cfg.Moderation)
	}
	if c.stream {
		p.PartialImages = oai.Int(int64(g.cfg.PartialImages))
	}
	return p
}

// editParams returns the multipart body of POST /images/edits, with fresh
// readers (a body is consumed by each attempt). The base image comes first,
// then the attachments: the SDK sends a single image as the "image" part and
// several as "image[]" parts.
func (g *Generator) editParams(c *call) oai.ImageEditParams {
	var files []io.Reader
	if b := c.req.Base; b != nil {
		files = append(files, upload(*b, "base"))
	}
	for i, in := range c.req.Inputs {
		files = append(files, upload(in, fmt.Sprintf("input-%d", i+1)))
	}
	p := oai.ImageEditParams{
		Prompt: c.prompt,
		Model:  c.model,
		N:      oai.Int(int64(c.n)),
		Size:   oai.ImageEditParamsSize(c.size),
	}
	if len(files) == 1 {
		p.Image.OfFile = files[0]
	} else {
		p.Image.OfFileArray = files
	}
	if m := c.req.Mask; m != nil {
		p.Mask = upload(*m, "mask")
	}
	if c.quality != "" {
		p.Quality = oai.ImageEditParamsQuality(c.quality)
	}
	if c.format != "" {
		p.OutputFormat = oai.ImageEditParamsOutputFormat(c.format)
	}
	if c.req.Flags.Transparent {
		p.Background = oai.ImageEditParamsBackgroundTransparent
	}
	if c.req.Base != nil && gptimage.SupportsInputFidelity(c.model) {
		// Keep faces, logos and text of the image being refined.
		p.InputFidelity = oai.ImageEditParamsInputFidelityHigh
	}
	if c.stream {
		p.PartialImages = oai.Int(int64(g.cfg.PartialImages))
	}
	return p
}

// upload returns im as a multipart file named stem plus the extension of its
// media type, sent with that media type.
func upload(im core.Image, stem string) io.Reader {
	mime := gptimage.ImageMIME(im)
	return oai.File(bytes.NewReader(im.Data), stem+core.ExtForMIME(mime), mime)
}

// readResponse turns a JSON answer into a Result.
func (g *Generator) readResponse(c *call, raw *http.Response) (core.Result, error) {
	ans, err := wire.ReadAnswer(raw, "b64_json")
	if err != nil {
		return core.Result{}, err
	}
	var resp oai.ImagesResponse
	if err := resp.UnmarshalJSON(ans.Rest); err != nil {
		return core.Result{}, fmt.Errorf("read answer: %w", err)
	}
	if len(ans.Images) == 0 {
		return core.Result{}, wire.ErrNoImages
	}
	var res core.Result
	for _, data := range ans.Images {
		res.Images = append(res.Images, core.Image{Data: data, MIME: gptimage.OutputMIME(string(resp.OutputFormat), c.format, data)})
	}
	u := resp.Usage
	res.Usage = gptimage.UsageOf(u.InputTokens, u.InputTokensDetails.TextTokens, u.InputTokensDetails.ImageTokens, u.OutputTokens)
	return res, nil
}

// streamEvent is what Easel reads of an image generation or edit stream
// event (both kinds share these fields).
type streamEvent struct {
	Type              string `json:"type"`
	OutputFormat      string `json:"output_format"`
	PartialImageIndex int64  `json:"partial_image_index"`
	Usage             struct {
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		InputTokensDetails struct {
			TextTokens  int64 `json:"text_tokens"`
			ImageTokens int64 `json:"image_tokens"`
		} `json:"input_tokens_details"`
	} `json:"usage"`
}

// readStream reads a stream of partial images up to its completed event,
// passing partials to the request's Progress. An error event, or a stream
// that ends before the completed event, is an error. *partials counts the
// partials delivered by earlier attempts, so indexes keep increasing.
func (g *Generator) readStream(c *call, raw *http.Response, partials *int) (core.Result, error) {
	var res core.Result
	// A partial image is decoded only to be shown: with Progress set, and
	// among the first req.Partials of the turn.
	skip := func(typ string) bool {
		return strings.HasSuffix(typ, ".partial_image") &&
			(c.req.Progress == nil || c.req.Partials > 0 && *partials >= c.req.Partials)
	}
	err := wire.ReadEvents(raw, []string{"b64_json"}, skip, func(a wire.Answer) (bool, error) {
		var ev streamEvent
		if err := json.Unmarshal(a.Rest, &ev); err != nil {
			return false, fmt.Errorf("read stream event: %w", err)
		}
		switch {
		case strings.HasSuffix(ev.Type, ".partial_image"):
			if len(a.Images) == 0 {
				g.log.Debug("openai: skipping a partial image event without an image", "index", ev.PartialImageIndex)
				return false, nil
			}
			if data := a.Images[0]; data != nil && c.req.Progress != nil {
				c.req.Progress(core.Partial{Index: *partials, Image: core.Image{Data: data, MIME: gptimage.OutputMIME(ev.OutputFormat, c.format, data)}})
			}
			*partials++
		case strings.HasSuffix(ev.Type, ".completed"):
			if len(a.Images) == 0 {
				return false, wire.ErrBadImage
			}
			data := a.Images[0]
			u := ev.Usage
			res = core.Result{
				Images: []core.Image{{Data: data, MIME: gptimage.OutputMIME(ev.OutputFormat, c.format, data)}},
				Usage:  gptimage.UsageOf(u.InputTokens, u.InputTokensDetails.TextTokens, u.InputTokensDetails.ImageTokens, u.OutputTokens),
			}
			return true, nil
		default:
			if se, ok := wire.ParseStreamError(a.Rest); ok {
				return false, se
			}
			g.log.Debug("openai: ignoring unknown stream event", "type", ev.Type)
		}
		return false, nil
	})
	return res, err
}
