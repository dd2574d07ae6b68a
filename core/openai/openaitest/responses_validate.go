package openaitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Parameters of CreateResponse in the spec: ModelResponseProperties,
// CreateModelResponseProperties, ResponseProperties and CreateResponse's
// own.
var responseParams = []string{
	"metadata", "top_logprobs", "temperature", "top_p", "user", "safety_identifier",
	"prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
	"previous_response_id", "model", "background", "max_tool_calls", "text", "tools",
	"tool_choice", "prompt",
	"service_tier", "truncation", "reasoning", "input", "include", "parallel_tool_calls",
	"store", "instructions", "moderation", "stream", "stream_options", "conversation",
	"context_management", "max_output_tokens",
}

// Properties of ImageGenTool in the spec.
var imageToolParams = []string{
	"type", "model", "quality", "size", "output_format", "output_compression",
	"moderation", "background", "input_fidelity", "input_image_mask", "partial_images", "action",
}

// More enums of the spec: ImageGenActionEnum, ImageDetail, ToolChoiceOptions.
var (
	actions      = []string{"generate", "edit", "auto"}
	imageDetails = []string{"low", "high", "auto", "original"}
	toolChoices  = []string{"none", "auto", "required"}
	roles        = []string{"user", "assistant", "system", "developer"}
)

// responseIDPattern is what OpenAI accepts as a response id.
var responseIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// respParams is a Responses API request, decoded and type-checked.
type respParams struct {
	model, instructions, prev string
	store, stream             bool
	toolChoice                string // "auto", "none", "required" or "image_generation"
	messages                  []Message
	images                    []Part  // the input images, in order
	tool                      *params // the image_generation tool; nil if none
	mask                      *Part   // the tool's input_image_mask; nil if none
	action                    string
	textFormat, schemaName    string // text.format's type and json_schema name
	fields                    map[string]string
}

// parseResponse decodes and checks a CreateResponse body against the spec.
func parseResponse(body []byte) (respParams, *reqError) {
	p := respParams{store: true, toolChoice: "auto", fields: map[string]string{}}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return p, invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	for key, val := range raw {
		if !slices.Contains(responseParams, key) {
			return p, invalid(key, "unknown_parameter", "Unknown parameter: '%s'.", key)
		}
		if string(val) == "null" {
			continue
		}
		var err *reqError
		switch key {
		case "model", "instructions", "previous_response_id":
			var s string
			if json.Unmarshal(val, &s) != nil {
				return p, invalid(key, "invalid_type", "Invalid type for '%s': expected a string, but got %s instead.", key, jsonKind(val))
			}
			p.fields[key] = s
		case "store", "stream":
			var b bool
			if json.Unmarshal(val, &b) != nil {
				return p, invalid(key, "invalid_type", "Invalid type for '%s': expected a boolean, but got %s instead.", key, jsonKind(val))
			}
			p.fields[key] = strconv.FormatBool(b)
		case "input":
			err = p.parseInput(val)
		case "tools":
			err = p.parseTools(val)
		case "tool_choice":
			err = p.parseToolChoice(val)
		case "text":
			err = p.parseText(val)
		}
		if err != nil {
			return p, err
		}
	}
	p.model, p.instructions, p.prev = p.fields["model"], p.fields["instructions"], p.fields["previous_response_id"]
	p.store = p.fields["store"] != "false"
	p.stream = p.fields["stream"] == "true"
	if p.model == "" {
		return p, invalid("model", "missing_required_parameter", "Missing required parameter: 'model'.")
	}
	if isImageModel(p.model) {
		return p, invalid("model", "invalid_value", "The model '%s' is an image model; the Responses API needs a model that reads the conversation, which calls it through the image_generation tool.", p.model)
	}
	if _, set := p.fields["previous_response_id"]; set && !responseIDPattern.MatchString(p.prev) {
		return p, invalid("previous_response_id", "invalid_value", "Invalid 'previous_response_id': '%s'. Expected an ID that contains letters, numbers, underscores, or dashes, but this value contained additional characters.", p.prev)
	}
	if len(p.messages) == 0 {
		return p, invalid("input", "missing_required_parameter", "Missing required parameter: 'input'.")
	}
	if p.toolChoice == "image_generation" && p.tool == nil {
		return p, invalid("tool_choice", "invalid_value", "Tool choice 'image_generation' not found in 'tools' parameter.")
	}
	return p, nil
}

// schemaNamePattern is what a json_schema format's name may be.
var schemaNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// parseText reads ResponseTextParam: a format (TextResponseFormatConfiguration:
// text, json_object, or json_schema with its name, schema, strict and
// description) and a verbosity.
func (p *respParams) parseText(val json.RawMessage) *reqError {
	var text map[string]json.RawMessage
	if json.Unmarshal(val, &text) != nil {
		return invalid("text", "invalid_type", "Invalid type for 'text': expected an object, but got %s instead.", jsonKind(val))
	}
	for key, v := range text {
		switch key {
		case "verbosity":
			if !slices.Contains([]string{"low", "medium", "high"}, str(v)) {
				return invalid("text.verbosity", "invalid_value", "Invalid value: '%s'. Supported values are: 'low', 'medium', and 'high'.", str(v))
			}
		case "format":
		default:
			return invalid("text."+key, "unknown_parameter", "Unknown parameter: 'text.%s'.", key)
		}
	}
	raw, ok := text["format"]
	if !ok {
		return nil
	}
	var format map[string]json.RawMessage
	if json.Unmarshal(raw, &format) != nil {
		return invalid("text.format", "invalid_type", "Invalid type for 'text.format': expected an object, but got %s instead.", jsonKind(raw))
	}
	p.textFormat = str(format["type"])
	allowed := map[string][]string{"text": {"type"}, "json_object": {"type"}, "json_schema": {"type", "name", "schema", "strict", "description"}}[p.textFormat]
	if allowed == nil {
		return invalid("text.format.type", "invalid_value", "Invalid value: '%s'. Supported values are: 'text', 'json_object', and 'json_schema'.", p.textFormat)
	}
	for key := range format {
		if !slices.Contains(allowed, key) {
			return invalid("text.format."+key, "unknown_parameter", "Unknown parameter: 'text.format.%s'.", key)
		}
	}
	if p.textFormat != "json_schema" {
		return nil
	}
	p.schemaName = str(format["name"])
	var schema map[string]json.RawMessage
	switch {
	case format["name"] == nil:
		return invalid("text.format.name", "missing_required_parameter", "Missing required parameter: 'text.format.name'.")
	case !schemaNamePattern.MatchString(p.schemaName):
		return invalid("text.format.name", "invalid_value", "Invalid 'text.format.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.")
	case format["schema"] == nil:
		return invalid("text.format.schema", "missing_required_parameter", "Missing required parameter: 'text.format.schema'.")
	case json.Unmarshal(format["schema"], &schema) != nil:
		return invalid("text.format.schema", "invalid_type", "Invalid type for 'text.format.schema': expected an object, but got %s instead.", jsonKind(format["schema"]))
	case format["strict"] != nil && string(format["strict"]) != "true" && string(format["strict"]) != "false" && string(format["strict"]) != "null":
		return invalid("text.format.strict", "invalid_type", "Invalid type for 'text.format.strict': expected a boolean, but got %s instead.", jsonKind(format["strict"]))
	case str(schema["type"]) != "object":
		return invalid("text.format.schema", "invalid_json_schema", "Invalid schema for response_format '%s': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"%s\"'.", p.schemaName, str(schema["type"]))
	}
	return nil
}

// parseInput reads InputParam: a string, or a list of EasyInputMessage
// items whose content is a string or a list of input_text and input_image
// parts (images as base64 data URLs).
func (p *respParams) parseInput(val json.RawMessage) *reqError {
	var text string
	if isString(val) {
		if json.Unmarshal(val, &text) != nil {
			return invalid("input", "invalid_type", "Invalid 'input': not a valid JSON string.")
		}
		p.messages = append(p.messages, Message{Role: "user", Text: text})
		return nil
	}
	var items []map[string]json.RawMessage
	if json.Unmarshal(val, &items) != nil {
		return invalid("input", "invalid_type", "Invalid type for 'input': expected a string or an array of input items, but got %s instead.", jsonKind(val))
	}
	for i, item := range items {
		at := fmt.Sprintf("input[%d]", i)
		for key := range item {
			if !slices.Contains([]string{"type", "role", "content", "phase"}, key) {
				return invalid(at+"."+key, "unknown_parameter", "Unknown parameter: '%s.%s'.", at, key)
			}
		}
		if t, ok := item["type"]; ok && str(t) != "message" {
			return invalid(at+".type", "invalid_value", "Invalid value: '%s'. Easel's fake takes only input messages.", str(t))
		}
		m := Message{Role: str(item["role"])}
		if !slices.Contains(roles, m.Role) {
			return invalid(at+".role", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", m.Role, quoteList(roles))
		}
		content, ok := item["content"]
		if !ok {
			return invalid(at+".content", "missing_required_parameter", "Missing required parameter: '%s.content'.", at)
		}
		if isString(content) {
			if json.Unmarshal(content, &text) != nil {
				return invalid(at+".content", "invalid_type", "Invalid '%s.content': not a valid JSON string.", at)
			}
			m.Text = text
			p.messages = append(p.messages, m)
			continue
		}
		var parts []map[string]json.RawMessage
		if json.Unmarshal(content, &parts) != nil {
			return invalid(at+".content", "invalid_type", "Invalid type for '%s.content': expected a string or an array, but got %s instead.", at, jsonKind(content))
		}
		var texts []string
		for j, part := range parts {
			pat := fmt.Sprintf("%s.content[%d]", at, j)
			switch typ := str(part["type"]); typ {
			case "input_text":
				if m.Role == "assistant" {
					return invalid(pat+".type", "invalid_value", "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.")
				}
				texts = append(texts, str(part["text"]))
			case "output_text":
				if m.Role != "assistant" {
					return invalid(pat+".type", "invalid_value", "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image', and 'input_file'.")
				}
				texts = append(texts, str(part["text"]))
			case "input_image":
				if m.Role == "assistant" {
					return invalid(pat+".type", "invalid_value", "Invalid value: 'input_image'. Supported values are: 'output_text' and 'refusal'.")
				}
				img, rerr := inputImage(pat, part)
				if rerr != nil {
					return rerr
				}
				p.images = append(p.images, img)
				m.Images++
			default:
				return invalid(pat+".type", "invalid_value", "Invalid value: '%s'. Supported values are: 'input_text', 'input_image', and 'input_file'.", typ)
			}
		}
		m.Text = strings.Join(texts, "\n")
		p.messages = append(p.messages, m)
	}
	return nil
}

// inputImage reads an InputImageContent part: detail is required, and the
// image comes as a base64 data URL of a PNG, JPEG or WebP image.
func inputImage(at string, part map[string]json.RawMessage) (Part, *reqError) {
	for key := range part {
		if !slices.Contains([]string{"type", "image_url", "file_id", "detail", "prompt_cache_breakpoint"}, key) {
			return Part{}, invalid(at+"."+key, "unknown_parameter", "Unknown parameter: '%s.%s'.", at, key)
		}
	}
	detail, ok := part["detail"]
	if !ok {
		return Part{}, invalid(at+".detail", "missing_required_parameter", "Missing required parameter: '%s.detail'.", at)
	}
	if d := str(detail); !slices.Contains(imageDetails, d) {
		return Part{}, invalid(at+".detail", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", d, quoteList(imageDetails))
	}
	url := str(part["image_url"])
	head, data, ok := strings.Cut(url, ",")
	mediaType, isB64 := strings.CutSuffix(strings.TrimPrefix(head, "data:"), ";base64")
	if !ok || !strings.HasPrefix(head, "data:") || !isB64 {
		return Part{}, invalid(at+".image_url", "invalid_image_url", "Invalid 'image_url': the fake takes only base64 data URLs (data:image/png;base64,…).")
	}
	img, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(img) == 0 {
		return Part{}, invalid(at+".image_url", "invalid_base64_image", "Invalid base64 image in '%s.image_url'.", at)
	}
	pt := Part{Field: "input_image", ContentType: mediaType, Data: img}
	if !slices.Contains(imageTypes, mediaType) {
		return pt, invalid(at+".image_url", "invalid_image_format", "Invalid image: unsupported mimetype ('%s'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.", mediaType)
	}
	if sniffed := http.DetectContentType(img); sniffed != mediaType {
		return pt, invalid(at+".image_url", "invalid_image", "Invalid image: the data is %s, not the %s its data URL names.", sniffed, mediaType)
	}
	return pt, nil
}

// parseTools reads the tools array: the fake serves only the
// image_generation tool (ImageGenTool), once.
func (p *respParams) parseTools(val json.RawMessage) *reqError {
	var tools []map[string]json.RawMessage
	if json.Unmarshal(val, &tools) != nil {
		return invalid("tools", "invalid_type", "Invalid type for 'tools': expected an array, but got %s instead.", jsonKind(val))
	}
	for i, tool := range tools {
		at := fmt.Sprintf("tools[%d]", i)
		if typ := str(tool["type"]); typ != "image_generation" {
			return invalid(at+".type", "invalid_value", "Invalid value: '%s'. Easel's fake serves only the 'image_generation' tool.", typ)
		}
		if p.tool != nil {
			return invalid(at, "invalid_value", "Duplicate tool 'image_generation'.")
		}
		t := &params{N: 1, fields: map[string]string{}}
		for key, v := range tool {
			if !slices.Contains(imageToolParams, key) {
				return invalid(at+"."+key, "unknown_parameter", "Unknown parameter: '%s.%s'.", at, key)
			}
			switch key {
			case "type":
			case "partial_images", "output_compression":
				var n int
				if json.Unmarshal(v, &n) != nil {
					return invalid(at+"."+key, "invalid_type", "Invalid type for '%s.%s': expected an integer, but got %s instead.", at, key, jsonKind(v))
				}
				t.fields[key] = strconv.Itoa(n)
			case "input_image_mask":
				mask, rerr := imageMask(at+"."+key, v)
				if rerr != nil {
					return rerr
				}
				p.mask = &mask
			default:
				var s string
				if json.Unmarshal(v, &s) != nil {
					return invalid(at+"."+key, "invalid_type", "Invalid type for '%s.%s': expected a string, but got %s instead.", at, key, jsonKind(v))
				}
				t.fields[key] = s
			}
		}
		if rerr := t.fill(); rerr != nil {
			return rerr
		}
		p.tool, p.action = t, t.fields["action"]
		if _, set := t.fields["action"]; set && !slices.Contains(actions, p.action) {
			return invalid(at+".action", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", p.action, quoteList(actions))
		}
		for k, v := range t.fields {
			p.fields[at+"."+k] = v
		}
	}
	return nil
}

// imageMask reads the image tool's input_image_mask: an object with
// image_url (a base64 data URL of a PNG) or file_id; the fake takes only
// image_url.
func imageMask(at string, raw json.RawMessage) (Part, *reqError) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return Part{}, invalid(at, "invalid_type", "Invalid type for '%s': expected an object, but got %s instead.", at, jsonKind(raw))
	}
	for key := range obj {
		if key != "image_url" && key != "file_id" {
			return Part{}, invalid(at+"."+key, "unknown_parameter", "Unknown parameter: '%s.%s'.", at, key)
		}
	}
	if _, ok := obj["file_id"]; ok {
		return Part{}, invalid(at+".file_id", "unsupported_parameter", "Easel's fake takes the mask only as '%s.image_url'.", at)
	}
	url := str(obj["image_url"])
	head, data, ok := strings.Cut(url, ",")
	mediaType, isB64 := strings.CutSuffix(strings.TrimPrefix(head, "data:"), ";base64")
	if !ok || !strings.HasPrefix(head, "data:") || !isB64 {
		return Part{}, invalid(at+".image_url", "invalid_image_url", "Invalid '%s.image_url': expected a base64 data URL of a PNG (data:image/png;base64,…).", at)
	}
	img, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(img) == 0 {
		return Part{}, invalid(at+".image_url", "invalid_base64_image", "Invalid base64 image in '%s.image_url'.", at)
	}
	if mediaType != "image/png" || http.DetectContentType(img) != "image/png" {
		return Part{}, invalid(at+".image_url", "invalid_image_format", "Invalid mask: the mask must be a PNG image (got '%s').", mediaType)
	}
	return Part{Field: "input_image_mask", ContentType: mediaType, Data: img}, nil
}

// parseToolChoice reads ToolChoiceParam: a mode, or {"type": "image_generation"}.
func (p *respParams) parseToolChoice(val json.RawMessage) *reqError {
	var mode string
	if json.Unmarshal(val, &mode) == nil {
		if !slices.Contains(toolChoices, mode) {
			return invalid("tool_choice", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", mode, quoteList(toolChoices))
		}
		p.toolChoice = mode
		return nil
	}
	var hosted struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(val, &hosted) != nil || hosted.Type != "image_generation" {
		return invalid("tool_choice", "invalid_value", "Invalid 'tool_choice': Easel's fake takes a mode or {\"type\": \"image_generation\"}.")
	}
	p.toolChoice = "image_generation"
	return nil
}

// checkTool validates the image_generation tool like the Images API's
// parameters (ImageGenTool has the same enums and limits), for the models
// the fake serves.
func (p *respParams) checkTool(models []string) *reqError {
	t := p.tool
	if t == nil {
		return nil
	}
	if t.Model == "" {
		t.Model = "gpt-image-2" // the tool's default
	}
	if !isGPTImage2(t.Model) && !slices.Contains(models, t.Model) {
		return &reqError{status: http.StatusNotFound, err: apiError{
			Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", t.Model),
			Type:    "invalid_request_error",
			Code:    ptr("model_not_found"),
			Param:   ptr("tools[0].model"),
		}}
	}
	if t.PartialImages < 0 || t.PartialImages > 3 {
		return invalid("tools[0].partial_images", "integer_above_max_value", "Invalid 'tools[0].partial_images': expected a value between 0 and 3, but got %d instead.", t.PartialImages)
	}
	for _, e := range []struct {
		param, value string
		allowed      []string
	}{
		{"quality", t.Quality, qualities},
		{"output_format", t.OutputFormat, outputFormats},
		{"background", t.Background, backgrounds},
		{"moderation", t.Moderation, moderations},
		{"input_fidelity", t.InputFidelity, fidelities},
	} {
		if _, set := t.fields[e.param]; set && !slices.Contains(e.allowed, e.value) {
			return invalid("tools[0]."+e.param, "invalid_value", "Invalid value: '%s'. Supported values are: %s.", e.value, quoteList(e.allowed))
		}
	}
	if t.Background == "transparent" && t.OutputFormat == "jpeg" {
		return invalid("tools[0].background", "invalid_value", "Transparent background is not supported with output_format 'jpeg'; use 'png' or 'webp'.")
	}
	switch {
	case t.InputFidelity != "" && isGPTImage2(t.Model):
		return invalid("tools[0].input_fidelity", "unsupported_parameter", "The 'input_fidelity' parameter is not supported for model '%s'; omit it.", t.Model)
	case t.InputFidelity == "high" && t.Model == "gpt-image-1-mini":
		return invalid("tools[0].input_fidelity", "invalid_value", "Invalid value: 'high'. Model 'gpt-image-1-mini' only supports 'low'.")
	}
	if msg := checkSize(t.Model, t.Size); msg != "" {
		return invalid("tools[0].size", "invalid_value", "%s", msg)
	}
	return nil
}

// isImageModel reports whether model is an image model, which cannot lead a
// conversation.
func isImageModel(model string) bool {
	return strings.HasPrefix(model, "gpt-image") || strings.HasPrefix(model, "dall-e") || strings.HasPrefix(model, "chatgpt-image")
}

// isString reports whether raw is a JSON string (by its first byte: a
// trial decoding would read a large image twice).
func isString(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '"'
}

// str returns a JSON string's value, "" for anything else.
func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}
