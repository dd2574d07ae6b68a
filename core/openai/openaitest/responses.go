package openaitest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Responses API (POST /v1/responses) with the image_generation tool.
//
// The fake's conversation model is simple and deterministic. It reads the
// last user message of the input: it answers in words (AnswerTo) when the
// request has no image_generation tool, when tool_choice is "none", or when
// tool_choice is "auto" and the message ends with "?"; otherwise it calls
// the image model once with RevisePrompt of the message, adding words
// beside the image when some were queued with Say. An image call whose
// action is "edit" edits the latest image of the conversation (recorded as
// Request.Edited) and needs one: without any, the request gets a 400. So
// does an input_image_mask (recorded as Request.Mask) that is not a PNG
// with an alpha channel of that image's size.
//
// Each answer is stored under its id unless the request says store: false,
// with the conversation so far (text read and written, images seen and
// made), so that a request naming it as previous_response_id continues
// from it. An unknown id gets the 400 previous_response_not_found OpenAI
// sends for an expired or unstored response; Forget drops stored ones.
//
// Usage is reported as OpenAI does: "usage" for the conversation model
// (its input counts the whole conversation again, 4 characters a token and
// 765 tokens an image) and "tool_usage.image_gen" for the image model
// (output tokens as the Images API's: 272, 1056 or 4160 for a low, medium
// or high 1024x1024 image, scaled by pixels).
//
// Faults apply as for the Images API, except FaultModeration, which makes
// the image call fail inside a completed response (status "failed", error
// code moderation_blocked), FaultStreamError, which sends the spec's flat
// error event, and FaultResponseFailed.

// contextImageTokens is what an image in the conversation counts for the
// conversation model.
const contextImageTokens = 765

// convo is what a stored response remembers of its conversation.
type convo struct {
	chars  int      // characters of text read and written
	images [][]byte // images seen and made, oldest first
}

// AnswerTo returns what the fake's conversation model answers in words to
// question.
func AnswerTo(question string) string {
	return "The fake model's answer to “" + strings.TrimSpace(question) + "”."
}

// RevisePrompt returns the prompt the fake's conversation model gives the
// image model for a user's message.
func RevisePrompt(message string) string {
	return strings.TrimSpace(message) + " (as the fake understood it)"
}

// Suggestions are the prompts the fake's conversation model suggests for
// any image when asked for a json_schema answer, as {"prompts": [...]}.
var Suggestions = []string{
	"a lighthouse on a rocky shore at dusk, watercolour",
	"a neon-lit city street in the rain, cinematic",
	"a bowl of lemons on a linen cloth, still life in oils",
	"a fox curled up in fresh snow, soft morning light",
}

// Say queues words for the fake to answer beside the images of upcoming
// Responses API requests, one per request that makes an image.
func (s *Server) Say(words ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.says = append(s.says, words...)
}

// Forget drops the stored responses ids, or all of them when none is
// given, as OpenAI does when they expire: continuing one then gets a 400
// previous_response_not_found.
func (s *Server) Forget(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ids) == 0 {
		clear(s.stored)
	}
	for _, id := range ids {
		delete(s.stored, id)
	}
}

// Stored reports whether response id is stored.
func (s *Server) Stored(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.stored[id]
	return ok
}

// responses serves POST /v1/responses.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.admit(w, r)
	if !ok {
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	rec.ContentType = mediaType
	if mediaType != "application/json" {
		s.finish(&rec, w, http.StatusBadRequest, invalid("", "", "Invalid Content-Type header (%s), expected application/json.", mediaType).err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.finish(&rec, w, http.StatusBadRequest, invalid("", "", "Could not read the request body.").err)
		return
	}
	p, rerr := parseResponse(body)
	if rerr == nil {
		rerr = p.checkTool(s.models())
	}
	p.record(&rec)
	if rerr != nil {
		s.finish(&rec, w, rerr.status, rerr.err)
		return
	}

	// The conversation this response reads: the stored one it continues,
	// then its instructions and input.
	var ctx convo
	if p.prev != "" {
		s.mu.Lock()
		stored, ok := s.stored[p.prev]
		if ok {
			ctx = convo{chars: stored.chars, images: slices.Clone(stored.images)}
		}
		s.mu.Unlock()
		if !ok {
			e := apiError{Message: fmt.Sprintf("Previous response with id '%s' not found.", p.prev), Type: "invalid_request_error",
				Param: ptr("previous_response_id"), Code: ptr("previous_response_not_found")}
			s.finish(&rec, w, http.StatusBadRequest, e)
			return
		}
	}
	readChars := ctx.chars + len(p.instructions)
	for _, m := range p.messages {
		ctx.chars += len(m.Text)
		readChars += len(m.Text)
	}
	for _, img := range p.images {
		ctx.images = append(ctx.images, img.Data)
	}
	rec.Context = len(ctx.images)

	draw := p.tool != nil && (p.toolChoice == "required" || p.toolChoice == "image_generation" ||
		(p.toolChoice == "auto" && !strings.HasSuffix(strings.TrimSpace(rec.Prompt), "?")))
	if draw && p.action == "edit" && len(ctx.images) == 0 {
		s.finish(&rec, w, http.StatusBadRequest, invalid("tools[0].action", "invalid_value",
			"The image_generation tool's action is 'edit', but the conversation holds no image to edit.").err)
		return
	}
	if p.mask != nil {
		const param = "tools[0].input_image_mask"
		var rerr *reqError
		switch {
		case p.action == "generate" || len(ctx.images) == 0:
			rerr = invalid(param, "invalid_value", "An input_image_mask applies to an image being edited; this request edits none.")
		default:
			rerr = checkMask(param, p.mask.Data, ctx.images[len(ctx.images)-1])
		}
		if rerr != nil {
			s.finish(&rec, w, rerr.status, rerr.err)
			return
		}
	}

	fault, faulted := s.nextFault()
	if faulted {
		rec.Fault = fault.Kind
		switch fault.Kind {
		case FaultReset:
			s.reset(w, &rec)
			return
		case FaultStall:
			s.record(&rec)
			s.stall(r)
			return
		case FaultRateLimit, FaultQuota, FaultUnauthorized, FaultServerError, FaultCustom:
			s.errorFault(w, &rec, p.model, fault)
			return
		case FaultStreamError:
			if !p.stream {
				s.errorFault(w, &rec, p.model, fault)
				return
			}
		}
	}
	var f *Fault
	if faulted {
		f = &fault
	}

	resp, partials, err := s.answer(&rec, p, &ctx, readChars, draw, f)
	if err != nil {
		s.finish(&rec, w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: "server_error"})
		return
	}
	complete := f == nil || f.Kind == FaultModeration || f.Kind == FaultResponseFailed
	if complete && p.store && resp.Status == "completed" {
		s.mu.Lock()
		s.stored[resp.ID] = &ctx
		s.mu.Unlock()
	}
	rec.Status = http.StatusOK
	if p.stream {
		s.streamResponse(w, r, &rec, p, resp, partials, f)
		return
	}
	s.respondResponse(w, r, &rec, resp, f)
}

// record copies what the request carried into rec.
func (p respParams) record(rec *Request) {
	rec.Fields = p.fields
	rec.ConversationModel, rec.Instructions, rec.PreviousResponseID, rec.Store = p.model, p.instructions, p.prev, p.store
	rec.Messages, rec.Images, rec.Action, rec.ToolChoice, rec.Stream = p.messages, p.images, p.action, p.toolChoice, p.stream
	rec.Mask = p.mask
	rec.TextFormat, rec.SchemaName = p.textFormat, p.schemaName
	for i := len(p.messages) - 1; i >= 0; i-- {
		if p.messages[i].Role == "user" {
			rec.Prompt = p.messages[i].Text
			break
		}
	}
	if t := p.tool; t != nil {
		rec.Model, rec.Size, rec.Quality, rec.Background = t.Model, t.Size, t.Quality, t.Background
		rec.Moderation, rec.OutputFormat, rec.InputFidelity, rec.PartialImages = t.Moderation, t.OutputFormat, t.InputFidelity, t.PartialImages
	}
}

// answer makes the response to p: words, or an image (with its partial
// images) and perhaps words beside it. ctx is the conversation it read,
// readChars the characters of text in it; ctx gets what the response adds.
func (s *Server) answer(rec *Request, p respParams, ctx *convo, readChars int, draw bool, f *Fault) (*responseObject, [][]byte, error) {
	s.mu.Lock()
	s.responseSeq++
	rec.ResponseID = fmt.Sprintf("resp_fake%06d", s.responseSeq)
	var words string
	if draw && len(s.says) > 0 {
		words, s.says = s.says[0], s.says[1:]
	}
	s.mu.Unlock()
	resp := newResponseObject(rec.ResponseID, p)
	conv := respUsage{InputTokens: int64(readChars+3)/4 + int64(len(ctx.images))*contextImageTokens}
	var partials [][]byte
	if draw {
		rec.RevisedPrompt = RevisePrompt(rec.Prompt)
		call := imageCall{Type: "image_generation_call", ID: "ig_" + rec.ResponseID, Status: "completed",
			RevisedPrompt: rec.RevisedPrompt, Action: orDefault(p.action, "auto"), Background: orDefault(p.tool.Background, "auto"),
			OutputFormat: orDefault(p.tool.OutputFormat, "png"), Quality: responseQuality(p.tool.Quality), Size: responseSize(p.tool.Size)}
		edit := p.action == "edit" || (p.action != "generate" && len(ctx.images) > 0)
		if edit {
			rec.Edited = ctx.images[len(ctx.images)-1]
		}
		if f != nil && f.Kind == FaultModeration {
			call.Status = "failed"
			call.Error = &callError{Code: "moderation_blocked", Type: "image_generation_user_error",
				Message: "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID."}
			rec.Error = "moderation_blocked"
		} else {
			n := p.tool.PartialImages
			if !p.stream {
				n = 0
			}
			for range n {
				data, err := s.newImage(call.OutputFormat, p.tool.Size, true)
				if err != nil {
					return nil, nil, err
				}
				partials = append(partials, data)
			}
			data, err := s.newImage(call.OutputFormat, p.tool.Size, false)
			if err != nil {
				return nil, nil, err
			}
			b64 := base64.StdEncoding.EncodeToString(data)
			call.Result = &b64
			rec.Returned = [][]byte{data}
			ctx.images = append(ctx.images, data)
			resp.ToolUsage = s.imageUsage(p, rec, edit)
		}
		resp.Output = append(resp.Output, call)
		conv.OutputTokens += int64(len(rec.RevisedPrompt)+3)/4 + 20
		ctx.chars += len(rec.RevisedPrompt)
	} else if f != nil && f.Kind == FaultModeration {
		rec.Error = "refusal"
		resp.Output = append(resp.Output, outputMessage{Type: "message", ID: "msg_" + rec.ResponseID, Status: "completed", Role: "assistant",
			Content: []outputText{{Type: "refusal", Refusal: "I can't help with that image.", Annotations: []any{}, Logprobs: []any{}}}})
	} else if p.textFormat == "json_schema" {
		answer, err := json.Marshal(map[string][]string{"prompts": Suggestions})
		if err != nil {
			return nil, nil, err
		}
		words = string(answer)
	} else {
		words = AnswerTo(rec.Prompt)
	}
	if words != "" {
		rec.Text = words
		resp.Output = append(resp.Output, outputMessage{Type: "message", ID: "msg_" + rec.ResponseID, Status: "completed", Role: "assistant",
			Content: []outputText{{Type: "output_text", Text: words, Annotations: []any{}, Logprobs: []any{}}}})
		conv.OutputTokens += int64(len(words)+3) / 4
		ctx.chars += len(words)
	}
	conv.TotalTokens = conv.InputTokens + conv.OutputTokens
	resp.Usage = &conv
	if f != nil && f.Kind == FaultResponseFailed {
		resp.Status, resp.Output = "failed", []any{}
		resp.Error = &responseError{Code: orDefault(f.Code, "server_error"), Message: orDefault(f.Message, "The model failed to generate a response.")}
		rec.Error = resp.Error.Code
		rec.Returned = nil
	}
	return resp, partials, nil
}

// imageUsage is the image model's usage for one image of p.
func (s *Server) imageUsage(p respParams, rec *Request, edit bool) *toolUsage {
	given := len(rec.Images)
	if edit && given == 0 {
		given = 1 // the image of the conversation it edits
	}
	u := s.usage(params{Prompt: rec.RevisedPrompt, Quality: p.tool.Quality, Size: p.tool.Size}, given)
	return &toolUsage{ImageGen: u}
}

// respondResponse answers with the response as JSON. A fault of kind
// FaultTruncated or FaultStallBody sends only half the body while promising
// all of it; FaultStallBody then stalls.
func (s *Server) respondResponse(w http.ResponseWriter, r *http.Request, rec *Request, resp *responseObject, f *Fault) {
	body, _ := json.Marshal(resp)
	cut := f != nil && (f.Kind == FaultTruncated || f.Kind == FaultStallBody)
	if cut {
		rec.Returned = nil
	}
	s.record(rec)
	s.keep(rec.Returned, nil)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-request-id", s.requestID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if cut {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
	if f != nil && f.Kind == FaultStallBody {
		_ = http.NewResponseController(w).Flush()
		s.stall(r)
	}
}

// streamResponse answers with server-sent events, in the order OpenAI sends
// them: response.created and response.in_progress; for an image call its
// output_item.added, in_progress, generating, the partial images,
// completed and output_item.done; for words the message's output_item,
// content_part and output_text events; then response.completed (or
// response.failed). A fault of kind FaultTruncated, FaultStallBody or
// FaultStreamError cuts the stream after the first partial image or text
// delta (then FaultStallBody stalls and FaultStreamError sends an error
// event).
func (s *Server) streamResponse(w http.ResponseWriter, r *http.Request, rec *Request, p respParams, resp *responseObject, partials [][]byte, f *Fault) {
	type sse struct {
		event string
		data  map[string]any
	}
	var events []sse
	seq := 0
	add := func(typ string, data map[string]any) {
		data["type"], data["sequence_number"] = typ, seq
		seq++
		events = append(events, sse{typ, data})
	}
	progress := *resp
	progress.Status, progress.Output, progress.Usage, progress.ToolUsage, progress.Error = "in_progress", []any{}, nil, nil, nil
	add("response.created", map[string]any{"response": progress})
	add("response.in_progress", map[string]any{"response": progress})
	cutAt := -1
	final := resp.Output
	if resp.Status == "failed" {
		final = nil
	}
	for i, item := range final {
		switch it := item.(type) {
		case imageCall:
			added := it
			added.Status, added.Result, added.Error = "in_progress", nil, nil
			add("response.output_item.added", map[string]any{"output_index": i, "item": added})
			add("response.image_generation_call.in_progress", map[string]any{"output_index": i, "item_id": it.ID})
			add("response.image_generation_call.generating", map[string]any{"output_index": i, "item_id": it.ID})
			for k, data := range partials {
				add("response.image_generation_call.partial_image", map[string]any{"output_index": i, "item_id": it.ID,
					"partial_image_index": k, "partial_image_b64": base64.StdEncoding.EncodeToString(data),
					"size": it.Size, "quality": it.Quality, "background": it.Background, "output_format": it.OutputFormat})
				if cutAt < 0 {
					cutAt = len(events)
				}
			}
			if it.Status == "completed" {
				add("response.image_generation_call.completed", map[string]any{"output_index": i, "item_id": it.ID})
			}
			add("response.output_item.done", map[string]any{"output_index": i, "item": it})
		case outputMessage:
			added := it
			added.Status, added.Content = "in_progress", []outputText{}
			add("response.output_item.added", map[string]any{"output_index": i, "item": added})
			empty := outputText{Type: "output_text", Text: "", Annotations: []any{}, Logprobs: []any{}}
			add("response.content_part.added", map[string]any{"output_index": i, "item_id": it.ID, "content_index": 0, "part": empty})
			text := it.Content[0].Text
			half := len(text) / 2
			for _, delta := range []string{text[:half], text[half:]} {
				add("response.output_text.delta", map[string]any{"output_index": i, "item_id": it.ID, "content_index": 0, "delta": delta, "logprobs": []any{}})
				if cutAt < 0 {
					cutAt = len(events)
				}
			}
			add("response.output_text.done", map[string]any{"output_index": i, "item_id": it.ID, "content_index": 0, "text": text, "logprobs": []any{}})
			add("response.content_part.done", map[string]any{"output_index": i, "item_id": it.ID, "content_index": 0, "part": it.Content[0]})
			add("response.output_item.done", map[string]any{"output_index": i, "item": it})
		}
	}
	if resp.Status == "failed" {
		add("response.failed", map[string]any{"response": resp})
	} else {
		add("response.completed", map[string]any{"response": resp})
	}
	if cutAt < 0 {
		cutAt = 2 // after response.in_progress
	}
	if f != nil && (f.Kind == FaultTruncated || f.Kind == FaultStallBody || f.Kind == FaultStreamError) {
		events = events[:cutAt]
		rec.Returned = nil
		partials = partials[:min(len(partials), 1)]
		if f.Kind == FaultStreamError {
			seq = cutAt
			e := map[string]any{"code": nil, "message": orDefault(f.Message, "The server had an error while processing your request. Sorry about that!"), "param": nil}
			if f.Code != "" {
				e["code"] = f.Code
			}
			add("error", e)
			rec.Error = orDefault(f.Code, "server_error")
		}
	}
	rec.Partials = partials
	s.record(rec)
	s.keep(rec.Returned, partials)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("x-request-id", s.requestID())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, ev := range events {
		data, _ := json.Marshal(ev.data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.event, data); err != nil {
			return // the client went away
		}
		_ = rc.Flush()
	}
	if f != nil && f.Kind == FaultStallBody {
		s.stall(r)
	}
}

// Wire types of the spec's Response, ImageGenToolCall, OutputMessage and
// ResponseUsage, with tool_usage as the SDK reads it.
type (
	responseObject struct {
		ID                 string         `json:"id"`
		Object             string         `json:"object"`
		CreatedAt          int64          `json:"created_at"`
		Status             string         `json:"status"`
		CompletedAt        *int64         `json:"completed_at"`
		Error              *responseError `json:"error"`
		IncompleteDetails  *struct{}      `json:"incomplete_details"`
		Instructions       *string        `json:"instructions"`
		MaxOutputTokens    *int64         `json:"max_output_tokens"`
		Model              string         `json:"model"`
		Output             []any          `json:"output"`
		ParallelToolCalls  bool           `json:"parallel_tool_calls"`
		PreviousResponseID *string        `json:"previous_response_id"`
		Store              bool           `json:"store"`
		Temperature        float64        `json:"temperature"`
		TopP               float64        `json:"top_p"`
		ToolChoice         any            `json:"tool_choice"`
		Tools              []any          `json:"tools"`
		Metadata           map[string]any `json:"metadata"`
		Usage              *respUsage     `json:"usage"`
		ToolUsage          *toolUsage     `json:"tool_usage,omitempty"`
	}
	responseError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	imageCall struct {
		Type          string     `json:"type"`
		ID            string     `json:"id"`
		Status        string     `json:"status"`
		Result        *string    `json:"result"`
		RevisedPrompt string     `json:"revised_prompt,omitempty"`
		Action        string     `json:"action,omitempty"`
		Background    string     `json:"background,omitempty"`
		OutputFormat  string     `json:"output_format,omitempty"`
		Quality       string     `json:"quality,omitempty"`
		Size          string     `json:"size,omitempty"`
		Error         *callError `json:"error,omitempty"`
	}
	callError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param"`
		Type    string `json:"type"`
	}
	outputMessage struct {
		Type    string       `json:"type"`
		ID      string       `json:"id"`
		Status  string       `json:"status"`
		Role    string       `json:"role"`
		Content []outputText `json:"content"`
	}
	outputText struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Refusal     string `json:"refusal,omitempty"` // of a part of type "refusal"
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	respUsage struct {
		InputTokens        int64 `json:"input_tokens"`
		InputTokensDetails struct {
			CachedTokens     int64 `json:"cached_tokens"`
			CacheWriteTokens int64 `json:"cache_write_tokens"`
		} `json:"input_tokens_details"`
		OutputTokens        int64 `json:"output_tokens"`
		OutputTokensDetails struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
		TotalTokens int64 `json:"total_tokens"`
	}
	toolUsage struct {
		ImageGen usage `json:"image_gen"`
	}
)

// newResponseObject returns a completed response to p, without output.
func newResponseObject(id string, p respParams) *responseObject {
	now := time.Now().Unix()
	resp := &responseObject{ID: id, Object: "response", CreatedAt: now, Status: "completed", CompletedAt: &now,
		Model: p.model, Output: []any{}, ParallelToolCalls: true, Store: p.store, Temperature: 1, TopP: 1,
		ToolChoice: p.toolChoice, Tools: []any{}, Metadata: map[string]any{}}
	if p.toolChoice == "image_generation" {
		resp.ToolChoice = map[string]string{"type": "image_generation"}
	}
	if p.instructions != "" {
		resp.Instructions = &p.instructions
	}
	if p.prev != "" {
		resp.PreviousResponseID = &p.prev
	}
	if t := p.tool; t != nil {
		tool := map[string]any{"type": "image_generation", "model": t.Model}
		for k, v := range p.fields {
			name, ok := strings.CutPrefix(k, "tools[0].")
			switch {
			case !ok || name == "type":
			case name == "partial_images" || name == "output_compression":
				tool[name], _ = strconv.Atoi(v)
			default:
				tool[name] = v
			}
		}
		resp.Tools = []any{tool}
	}
	return resp
}
