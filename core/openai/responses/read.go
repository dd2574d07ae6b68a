package responses

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/gptimage"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	"github.com/openai/openai-go/v3/responses"
)

// imageKeys are the keys whose values are base64 images: an image call's
// result, and a partial image.
var imageKeys = []string{"result", "partial_image_b64"}

// outcome is what one response answered.
type outcome struct {
	id      string
	images  []core.Image
	revised []string // each image's revised prompt
	text    string
	usage   core.Usage
}

// readResponse reads a JSON (non-streaming) answer.
func (g *Generator) readResponse(c *call, raw *http.Response) (outcome, error) {
	ans, err := wire.ReadAnswer(raw, imageKeys...)
	if err != nil {
		return outcome{}, err
	}
	var resp responses.Response
	if err := resp.UnmarshalJSON(ans.Rest); err != nil {
		return outcome{}, fmt.Errorf("read answer: %w", err)
	}
	return g.outcomeOf(c, &resp, ans.Images)
}

// streamEvent is what Easel reads of a Responses API stream event.
type streamEvent struct {
	Type         string          `json:"type"`
	OutputFormat string          `json:"output_format"`
	Response     json.RawMessage `json:"response"`
}

// readStream reads a stream up to its response.completed event (or
// response.failed, response.incomplete), passing partial images to the
// request's Progress. An error event, or a stream that ends before, is an
// error. *partials counts the partials delivered by earlier attempts, so
// indexes keep increasing.
func (g *Generator) readStream(c *call, raw *http.Response, partials *int) (outcome, error) {
	var out outcome
	err := wire.ReadEvents(raw, imageKeys, nil, func(a wire.Answer) (bool, error) {
		var ev streamEvent
		if err := json.Unmarshal(a.Rest, &ev); err != nil {
			return false, fmt.Errorf("read stream event: %w", err)
		}
		switch ev.Type {
		case "response.image_generation_call.partial_image":
			if len(a.Images) == 0 {
				g.log.Debug("openai-responses: skipping a partial image event without an image")
				return false, nil
			}
			if c.req.Progress != nil {
				data := a.Images[0]
				c.req.Progress(core.Partial{Index: *partials, Image: core.Image{Data: data, MIME: gptimage.OutputMIME(ev.OutputFormat, c.format, data)}})
			}
			*partials++
		case "response.completed", "response.failed", "response.incomplete":
			var resp responses.Response
			if err := resp.UnmarshalJSON(ev.Response); err != nil {
				return false, fmt.Errorf("read %s event: %w", ev.Type, err)
			}
			var err error
			out, err = g.outcomeOf(c, &resp, a.Images)
			return true, err
		case "error":
			if se, ok := wire.ParseStreamError(a.Rest); ok {
				return false, se
			}
			return false, &wire.StreamError{Type: "error"}
		}
		return false, nil
	})
	return out, err
}

// errImagesLost is an answer whose image calls do not match the images
// read from it.
var errImagesLost = errors.New("OpenAI's answer lists more images than it carried")

// outcomeOf reads a finished response, whose image calls' results were
// taken out as images. A response that failed or is incomplete, an image
// call that failed, and a refusal in words are errors of the classes the
// Images API's equivalents have: the safety system's refusals are
// Refused, the rest mid-stream errors.
func (g *Generator) outcomeOf(c *call, resp *responses.Response, images [][]byte) (outcome, error) {
	switch resp.Status {
	case responses.ResponseStatusCompleted, "":
	case responses.ResponseStatusFailed:
		return outcome{}, &wire.StreamError{Type: "response.failed", Code: string(resp.Error.Code), Message: resp.Error.Message}
	case responses.ResponseStatusIncomplete:
		return outcome{}, &wire.StreamError{Type: "response.incomplete", Code: string(resp.IncompleteDetails.Reason),
			Message: "the response is incomplete: " + string(resp.IncompleteDetails.Reason)}
	default:
		return outcome{}, &wire.StreamError{Type: "response." + string(resp.Status), Message: "the response did not finish"}
	}
	out := outcome{id: resp.ID}
	var texts []string
	refusal := ""
	next := 0
	for _, item := range resp.Output {
		switch item.Type {
		case "image_generation_call":
			call := item.AsImageGenerationCall()
			if call.Status == "failed" || call.Error.Code != "" {
				return outcome{}, &wire.StreamError{Type: orDefault(call.Error.Type, "image_generation_call.failed"), Code: call.Error.Code, Message: call.Error.Message}
			}
			if item.JSON.Result.Raw() != `""` { // no image: null, or not done
				continue
			}
			if next >= len(images) {
				return outcome{}, errImagesLost
			}
			data := images[next]
			next++
			out.images = append(out.images, core.Image{Data: data, MIME: gptimage.OutputMIME(call.OutputFormat, c.format, data)})
			out.revised = append(out.revised, call.RevisedPrompt)
		case "message":
			for _, part := range item.Content {
				switch part.Type {
				case "output_text":
					texts = append(texts, part.Text)
				case "refusal":
					refusal = part.Refusal
				}
			}
		}
	}
	out.text = strings.TrimSpace(strings.Join(texts, "\n\n"))
	switch {
	case len(out.images) == 0 && out.text == "" && refusal != "":
		return outcome{}, &wire.StreamError{Type: "refusal", Code: "content_policy_violation", Message: refusal}
	case len(out.images) == 0 && out.text == "":
		return outcome{}, wire.ErrNoImages
	}

	u := resp.Usage
	out.usage = core.Usage{ConversationInputTokens: u.InputTokens, ConversationOutputTokens: u.OutputTokens}
	if ig := resp.ToolUsage.ImageGen; resp.JSON.ToolUsage.Valid() {
		img := gptimage.UsageOf(ig.InputTokens, ig.InputTokensDetails.TextTokens, ig.InputTokensDetails.ImageTokens, ig.OutputTokens)
		out.usage = out.usage.Add(img)
	} else if len(out.images) > 0 {
		// No tool usage in the answer: count the image model's tokens as
		// the estimate does, so its cost is not taken as 0.
		g.log.Debug("openai-responses: no tool usage in the answer; image tokens estimated")
		one := c.req
		one.N = 1
		for _, p := range out.revised {
			out.usage = out.usage.Add(gptimage.EstimateUsage(one, c.imageModel, orDefault(p, c.message)))
		}
	}
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
