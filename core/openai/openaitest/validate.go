package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// apiError is the Error schema of the OpenAI spec, sent inside an
// {"error": …} envelope.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// reqError is a rejected request: the status and error to answer with.
type reqError struct {
	status int
	err    apiError
}

func invalid(param, code, format string, args ...any) *reqError {
	e := apiError{Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = ptr(param)
	}
	if code != "" {
		e.Code = ptr(code)
	}
	return &reqError{status: http.StatusBadRequest, err: e}
}

// Parameters accepted by each endpoint: the properties of
// CreateImageRequest and CreateImageEditRequest in the spec, plus
// safety_identifier, which newer SDKs send.
var (
	generationParams = []string{
		"prompt", "model", "n", "quality", "response_format", "output_format",
		"output_compression", "stream", "partial_images", "size", "moderation",
		"background", "style", "user", "safety_identifier",
	}
	editParams = []string{
		"image", "image[]", "prompt", "mask", "background", "model", "n", "size",
		"response_format", "output_format", "output_compression", "user",
		"input_fidelity", "stream", "partial_images", "quality", "safety_identifier",
	}
)

// Enums of the spec, narrowed to what GPT image models accept.
var (
	qualities     = []string{"low", "medium", "high", "auto"}
	outputFormats = []string{"png", "jpeg", "webp"}
	backgrounds   = []string{"transparent", "opaque", "auto"}
	moderations   = []string{"low", "auto"}
	fidelities    = []string{"high", "low"}
	imageTypes    = []string{"image/png", "image/jpeg", "image/webp"}
)

// DefaultModels are the models the fake serves. Any name of the gpt-image-2
// family (gpt-image-2, its dated snapshots, gpt-image-2.x…) is served too.
var DefaultModels = []string{"gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"}

// params is a request's parameters, whichever encoding they came in.
type params struct {
	Prompt        string
	Model         string
	N             int
	Size          string
	Quality       string
	Background    string
	Moderation    string
	OutputFormat  string
	InputFidelity string
	Stream        bool
	PartialImages int
	fields        map[string]string
}

// jsonParams decodes and type-checks a JSON generation request.
func jsonParams(body []byte) (params, *reqError) {
	p := params{N: 1, fields: map[string]string{}}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return p, invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	for key, val := range raw {
		if !slices.Contains(generationParams, key) {
			return p, invalid(key, "unknown_parameter", "Unknown parameter: '%s'.", key)
		}
		if string(val) == "null" {
			continue
		}
		switch key {
		case "n", "partial_images", "output_compression":
			var n int
			if err := json.Unmarshal(val, &n); err != nil {
				return p, invalid(key, "invalid_type", "Invalid type for '%s': expected an integer, but got %s instead.", key, jsonKind(val))
			}
			p.fields[key] = strconv.Itoa(n)
		case "stream":
			var b bool
			if err := json.Unmarshal(val, &b); err != nil {
				return p, invalid(key, "invalid_type", "Invalid type for '%s': expected a boolean, but got %s instead.", key, jsonKind(val))
			}
			p.fields[key] = strconv.FormatBool(b)
		default:
			var s string
			if err := json.Unmarshal(val, &s); err != nil {
				return p, invalid(key, "invalid_type", "Invalid type for '%s': expected a string, but got %s instead.", key, jsonKind(val))
			}
			p.fields[key] = s
		}
	}
	return p, p.fill()
}

func jsonKind(v json.RawMessage) string {
	switch {
	case len(v) == 0:
		return "nothing"
	case v[0] == '"':
		return "a string"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	case bytes.ContainsAny(v, ".eE"):
		return "a decimal"
	default:
		return "an integer"
	}
}

// fill parses p.fields into p's typed fields.
func (p *params) fill() *reqError {
	f := p.fields
	p.Prompt, p.Model, p.Size = f["prompt"], f["model"], f["size"]
	p.Quality, p.Background, p.Moderation = f["quality"], f["background"], f["moderation"]
	p.OutputFormat, p.InputFidelity = f["output_format"], f["input_fidelity"]
	for _, key := range []string{"n", "partial_images", "output_compression"} {
		v, ok := f[key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return invalid(key, "invalid_type", "Invalid type for '%s': expected an integer, but got a string instead.", key)
		}
		switch key {
		case "n":
			p.N = n
		case "partial_images":
			p.PartialImages = n
		}
	}
	if v, ok := f["stream"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("stream", "invalid_type", "Invalid type for 'stream': expected a boolean, but got a string instead.")
		}
		p.Stream = b
	}
	return nil
}

// check validates p against the spec's constraints for the GPT image models.
// It returns a 404 for a model the fake does not serve, as the real API does.
func (p *params) check(models []string, edit bool) *reqError {
	if _, ok := p.fields["prompt"]; !ok || p.Prompt == "" {
		return invalid("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.")
	}
	if n := len([]rune(p.Prompt)); n > 32000 {
		return invalid("prompt", "string_above_max_length", "Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a string with length %d instead.", n)
	}
	if p.Model == "" {
		p.Model = "gpt-image-1.5" // the spec's default for GPT image requests
	}
	if !isGPTImage2(p.Model) && !slices.Contains(models, p.Model) {
		return &reqError{status: http.StatusNotFound, err: apiError{
			Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", p.Model),
			Type:    "invalid_request_error",
			Code:    ptr("model_not_found"),
			Param:   ptr("model"),
		}}
	}
	if p.N < 1 {
		return invalid("n", "integer_below_min_value", "Invalid 'n': integer below minimum value. Expected a value >= 1, but got %d instead.", p.N)
	}
	if p.N > 10 {
		return invalid("n", "integer_above_max_value", "Invalid 'n': integer above maximum value. Expected a value <= 10, but got %d instead.", p.N)
	}
	if p.PartialImages < 0 {
		return invalid("partial_images", "integer_below_min_value", "Invalid 'partial_images': integer below minimum value. Expected a value >= 0, but got %d instead.", p.PartialImages)
	}
	if p.PartialImages > 3 {
		return invalid("partial_images", "integer_above_max_value", "Invalid 'partial_images': integer above maximum value. Expected a value <= 3, but got %d instead.", p.PartialImages)
	}
	for _, e := range []struct {
		param, value string
		allowed      []string
	}{
		{"quality", p.Quality, qualities},
		{"output_format", p.OutputFormat, outputFormats},
		{"background", p.Background, backgrounds},
		{"moderation", p.Moderation, moderations},
		{"input_fidelity", p.InputFidelity, fidelities},
	} {
		if _, set := p.fields[e.param]; set && !slices.Contains(e.allowed, e.value) {
			return invalid(e.param, "invalid_value", "Invalid value: '%s'. Supported values are: %s.", e.value, quoteList(e.allowed))
		}
	}
	if _, set := p.fields["response_format"]; set {
		return invalid("response_format", "unknown_parameter", "Unknown parameter: 'response_format'.")
	}
	if _, set := p.fields["style"]; set {
		return invalid("style", "unknown_parameter", "Unknown parameter: 'style'.")
	}
	if p.Background == "transparent" && p.OutputFormat == "jpeg" {
		return invalid("background", "invalid_value", "Transparent background is not supported with output_format 'jpeg'; use 'png' or 'webp'.")
	}
	if p.InputFidelity != "" {
		switch {
		case !edit:
			return invalid("input_fidelity", "unknown_parameter", "Unknown parameter: 'input_fidelity'.")
		case isGPTImage2(p.Model):
			return invalid("input_fidelity", "unsupported_parameter", "The 'input_fidelity' parameter is not supported for model '%s'; omit it.", p.Model)
		case p.Model == "gpt-image-1-mini" && p.InputFidelity == "high":
			return invalid("input_fidelity", "invalid_value", "Invalid value: 'high'. Model 'gpt-image-1-mini' only supports 'low'.")
		}
	}
	if msg := checkSize(p.Model, p.Size); msg != "" {
		return invalid("size", "invalid_value", "%s", msg)
	}
	return nil
}

// checkSize returns why size is not acceptable for model, or "".
func checkSize(model, size string) string {
	if size == "" || size == "auto" {
		return ""
	}
	w, h, ok := parseSize(size)
	if !ok {
		return fmt.Sprintf("Invalid size '%s'. Sizes must be 'auto' or WIDTHxHEIGHT, for example '1536x1024'.", size)
	}
	if !isGPTImage2(model) {
		if slices.Contains([]string{"1024x1024", "1536x1024", "1024x1536"}, size) {
			return ""
		}
		return fmt.Sprintf("Invalid value: '%s'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.", size)
	}
	switch {
	case w%16 != 0 || h%16 != 0:
		return fmt.Sprintf("Invalid size '%s'. Width and height must both be divisible by 16.", size)
	case w > 3*h || h > 3*w:
		return fmt.Sprintf("Invalid size '%s'. The aspect ratio must be between 1:3 and 3:1.", size)
	case w*h > 3840*2160:
		return fmt.Sprintf("Invalid size '%s'. The maximum supported resolution is 3840x2160 (8294400 pixels).", size)
	case w > 3840 || h > 3840:
		return fmt.Sprintf("Invalid size '%s'. Neither edge may exceed 3840 pixels.", size)
	}
	return ""
}

// parseSize parses "WIDTHxHEIGHT" with positive dimensions.
func parseSize(s string) (w, h int, ok bool) {
	ws, hs, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || ws[0] == '+' || hs[0] == '+' {
		return 0, 0, false
	}
	return w, h, true
}

// isGPTImage2 reports whether model belongs to the gpt-image-2 family:
// gpt-image-2, its dated snapshots, and the gpt-image-2.x models.
func isGPTImage2(model string) bool {
	rest, ok := strings.CutPrefix(model, "gpt-image-2")
	return ok && (rest == "" || rest[0] == '-' || rest[0] == '.')
}

// checkImagePart validates one uploaded image part.
func checkImagePart(field string, index int, pt Part) *reqError {
	if !slices.Contains(imageTypes, pt.ContentType) {
		return invalid(field, "invalid_image_format", "Invalid file '%s': unsupported mimetype ('%s'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.", field, pt.ContentType)
	}
	if sniffed := http.DetectContentType(pt.Data); sniffed != pt.ContentType {
		return invalid(field, "invalid_image", "Invalid image file or mode for image %d, please check your image file.", index+1)
	}
	return nil
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	if len(q) > 1 {
		q[len(q)-1] = "and " + q[len(q)-1]
	}
	return strings.Join(q, ", ")
}
