// Package openaitest is a fake of the OpenAI Images API and of the
// Responses API's image_generation tool for tests, served on loopback and
// speaking the real wire protocol: JSON generations, multipart edits with
// "image" or "image[]" parts and an optional mask, SSE streaming with
// partial images, OpenAI's error envelope, and POST /v1/responses in JSON
// and SSE with stored responses to continue by previous_response_id (see
// responses.go for how its conversation model behaves).
//
// Requests are checked against the spec (openai-openapi.yaml:
// CreateImageRequest, CreateImageEditRequest, CreateResponse with
// ImageGenTool): a bad one gets the same kind of 400 invalid_request_error,
// naming the parameter, that OpenAI sends.
// Every request is recorded, including the bytes, filenames and content
// types of its image parts, and every image returned is kept, so tests can
// check that bytes travel unchanged. Faults (refusals, rate limits, quota,
// outages, resets, stalls, truncated bodies, mid-stream errors) can be
// queued for upcoming requests.
//
//	srv := openaitest.NewServer(t)
//	srv.Fail(openaitest.RateLimited(10 * time.Millisecond))
//	gen, _ := openai.New(openai.Config{APIKey: "sk-test", BaseURL: srv.URL()})
package openaitest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/internal/wirefake"
)

// Server is a fake OpenAI Images API. Its exported fields may be set before
// the first request; its methods are safe for concurrent use.
type Server struct {
	// Key, if set, is the only API key accepted; others get a 401
	// invalid_api_key. When empty any bearer token is accepted (a missing
	// one still gets a 401).
	Key string
	// Models are the model names served besides the gpt-image-2 family;
	// others get a 404 model_not_found. Defaults to DefaultModels.
	Models []string
	// FullSize makes returned images as large as the requested size (auto:
	// 1024x1024) instead of scaled down by 64, for tests that look at
	// dimensions or need realistic payloads.
	FullSize bool
	// StallLimit bounds how long a FaultStall waits when the client does not
	// give up first. Defaults to one minute.
	StallLimit time.Duration
	// OnArrive, if set, is called as each request to an images endpoint
	// arrives, before its body is read or anything is answered, with the
	// request's 1-based arrival number (requests later rejected count too).
	// It runs on the request's goroutine; set it before the first request.
	OnArrive func(n int)

	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests []Request
	faults   wirefake.Faults[Fault] // one queue, under the key ""
	images   [][]byte
	partials [][]byte
	seq      int
	arrivals int

	// The Responses API's stored responses and scripted words: see
	// responses.go.
	stored      map[string]*convo
	says        []string
	responseSeq int
}

// Request is one request as the fake received it.
type Request struct {
	Method, Path string
	// APIKey is the bearer token sent; empty when none was.
	APIKey      string
	ContentType string // media type of the body
	// Fields holds every non-file parameter as sent (multipart values, or
	// JSON values rendered as text).
	Fields        map[string]string
	Model         string
	Prompt        string
	N             int
	Size          string
	Quality       string
	Background    string
	Moderation    string
	OutputFormat  string
	InputFidelity string
	Stream        bool
	PartialImages int
	// ImageField is the multipart field the images came in: "image" or
	// "image[]" (empty for generations).
	ImageField string
	Images     []Part
	// Mask is the mask sent: the "mask" part of an edit, or the Responses
	// API image tool's input_image_mask (as field "input_image_mask"). The
	// fake checks that it is a PNG with an alpha channel of the same size
	// as the image it applies to (the first image of an edit, the image a
	// Responses API request edits).
	Mask *Part

	// Status is the HTTP status answered (0 for a reset or a stall).
	Status int
	// Error is the error code or type answered, if any.
	Error string
	// Fault is the fault injected into this request, if any.
	Fault FaultKind
	// Returned and Partials are the final and partial images sent back.
	Returned [][]byte
	Partials [][]byte
	// BodyBytes is the size of the request body.
	BodyBytes int64

	// Responses API requests (POST /v1/responses) also record what follows;
	// Model, Size, Quality, Background, Moderation, OutputFormat,
	// InputFidelity and PartialImages are the image_generation tool's,
	// Prompt the text of the last user message, and Images the input
	// images, as Parts of field "input_image".
	Responses
}

// Responses is what a Responses API request carried and how the fake
// answered it.
type Responses struct {
	// ConversationModel is the request's model: the one that reads the
	// conversation and calls the image model.
	ConversationModel string
	Instructions      string
	// PreviousResponseID is the response the request continued ("" for
	// none); Store whether the answer was to be stored.
	PreviousResponseID string
	Store              bool
	// Messages are the input messages, in order.
	Messages []Message
	// Action is the image tool's action ("" when not sent), ToolChoice the
	// request's tool_choice ("auto" when not sent).
	Action, ToolChoice string
	// ResponseID is the id of the response answered.
	ResponseID string
	// Context is the number of images the conversation model saw: those of
	// the stored conversation continued and the inputs.
	Context int
	// Edited is the image the image model edited: the latest image of the
	// conversation; nil for a generation or an answer in words.
	Edited []byte
	// Text is what the fake answered in words (alone or beside the image),
	// RevisedPrompt the prompt it gave the image model.
	Text, RevisedPrompt string
	// TextFormat is the type of the text.format asked for ("" when not
	// sent): "text", "json_object" or "json_schema"; SchemaName names a
	// json_schema.
	TextFormat, SchemaName string
}

// Message is one input message of a Responses API request.
type Message struct {
	Role string
	Text string // its text parts, joined by newlines
	// Images counts its input images (their bytes are in Request.Images).
	Images int
}

// Part is one uploaded file of a multipart request.
type Part struct {
	Field       string
	Filename    string
	ContentType string
	Data        []byte
}

// NewServer starts a fake on loopback and closes it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{closing: make(chan struct{}), stored: map[string]*convo{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/images/generations", s.handler(false))
	mux.HandleFunc("/v1/images/edits", s.handler(true))
	mux.HandleFunc("/v1/responses", s.responses)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path),
			Type:    "invalid_request_error",
		})
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// URL returns the API base URL, ending in "/v1", to configure clients with.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Close stops the server, releasing stalled requests first. It is called
// automatically when the test ends.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// Fail queues faults for upcoming requests, one per request, in order.
// Requests rejected by validation do not use up a fault.
func (s *Server) Fail(faults ...Fault) { s.faults.Add("", faults...) }

// PendingFaults returns how many queued faults have not been used yet.
func (s *Server) PendingFaults() int { return s.faults.Pending("") }

// Arrivals returns how many requests have arrived at the images endpoints,
// including those not yet answered and those rejected.
func (s *Server) Arrivals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrivals
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// LastRequest returns the most recent request; it fails the test if there
// was none.
func (s *Server) LastRequest(t testing.TB) Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatal("openaitest: no request received")
	}
	return reqs[len(reqs)-1]
}

// Images returns the decoded bytes of every final image returned so far, in
// order.
func (s *Server) Images() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.images)
}

// Partials returns the decoded bytes of every partial image streamed so far.
func (s *Server) Partials() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.partials)
}

// handler serves one of the two endpoints.
func (s *Server) handler(edit bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.admit(w, r)
		if !ok {
			return
		}
		p, rerr := s.parse(r, &rec, edit)
		if rerr == nil {
			rerr = p.check(s.models(), edit)
		}
		rec.Fields = p.fields
		rec.Model, rec.Prompt, rec.N, rec.Size = p.Model, p.Prompt, p.N, p.Size
		rec.Quality, rec.Background, rec.Moderation = p.Quality, p.Background, p.Moderation
		rec.OutputFormat, rec.InputFidelity = p.OutputFormat, p.InputFidelity
		rec.Stream, rec.PartialImages = p.Stream, p.PartialImages
		if rerr != nil {
			s.finish(&rec, w, rerr.status, rerr.err)
			return
		}

		fault, faulted := s.nextFault()
		if faulted {
			rec.Fault = fault.Kind
			if s.inject(w, r, &rec, p, fault, edit) {
				return
			}
		}
		if p.Stream {
			s.stream(w, r, &rec, p, edit, nil)
			return
		}
		s.respond(w, r, &rec, p, edit, nil)
	}
}

// admit counts a request's arrival and checks its method and API key. It
// reports false when it has answered the request already.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (Request, bool) {
	s.mu.Lock()
	s.arrivals++
	n := s.arrivals
	s.mu.Unlock()
	if s.OnArrive != nil {
		s.OnArrive(n)
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, BodyBytes: r.ContentLength}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, apiError{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path),
			Type:    "invalid_request_error",
		})
		return rec, false
	}
	key, hasKey := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rec.APIKey = key
	if !hasKey || key == "" {
		s.finish(&rec, w, http.StatusUnauthorized, apiError{
			Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
			Type:    "invalid_request_error",
		})
		return rec, false
	}
	if s.Key != "" && key != s.Key {
		s.finish(&rec, w, http.StatusUnauthorized, apiError{
			Message: "Incorrect API key provided: " + maskKey(key) + ". You can find your API key at https://platform.openai.com/account/api-keys.",
			Type:    "invalid_request_error",
			Code:    ptr("invalid_api_key"),
		})
		return rec, false
	}
	return rec, true
}

func (s *Server) models() []string {
	if s.Models != nil {
		return s.Models
	}
	return DefaultModels
}

// nextFault takes the next queued fault, if any.
func (s *Server) nextFault() (Fault, bool) { return s.faults.Take("") }

// parse reads the body of r into params, recording image parts in rec.
func (s *Server) parse(r *http.Request, rec *Request, edit bool) (params, *reqError) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	rec.ContentType = mediaType
	if !edit {
		if mediaType != "application/json" {
			return params{N: 1, fields: map[string]string{}}, invalid("", "", "Invalid Content-Type header (%s), expected application/json.", mediaType)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return params{N: 1, fields: map[string]string{}}, invalid("", "", "Could not read the request body.")
		}
		return jsonParams(body)
	}

	p := params{N: 1, fields: map[string]string{}}
	if mediaType != "multipart/form-data" {
		return p, invalid("", "", "Invalid Content-Type header (%s), expected multipart/form-data.", mediaType)
	}
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		return p, invalid("", "", "Could not parse multipart form: %v", err)
	}
	form := r.MultipartForm
	for key, vals := range form.Value {
		switch {
		case key == "image" || key == "image[]" || key == "mask":
			return p, invalid(key, "invalid_type", "Invalid type for '%s': expected a file, but got a string instead.", key)
		case !slices.Contains(editParams, key):
			return p, invalid(key, "unknown_parameter", "Unknown parameter: '%s'.", key)
		}
		p.fields[key] = vals[len(vals)-1]
	}
	for key := range form.File {
		if key != "image" && key != "image[]" && key != "mask" {
			return p, invalid(key, "unknown_parameter", "Unknown parameter: '%s'.", key)
		}
	}
	if rerr := p.fill(); rerr != nil {
		return p, rerr
	}
	single, multi := form.File["image"], form.File["image[]"]
	switch {
	case len(single) > 0 && len(multi) > 0:
		return p, invalid("image", "invalid_value", "Send either 'image' or 'image[]', not both.")
	case len(single) > 1:
		return p, invalid("image", "invalid_value", "Several files were sent as 'image'; use 'image[]' for an array of images.")
	case len(single) == 1:
		rec.ImageField = "image"
	case len(multi) > 0:
		rec.ImageField = "image[]"
	default:
		return p, invalid("image", "missing_required_parameter", "Missing required parameter: 'image'.")
	}
	if len(multi) > 16 {
		return p, invalid("image", "array_above_max_length", "Invalid 'image': array too long. Expected an array with maximum length 16, but got an array with length %d instead.", len(multi))
	}
	for _, fh := range append(single, multi...) {
		pt, err := readPart(rec.ImageField, fh.Filename, fh.Header.Get("Content-Type"), fh.Open)
		if err != nil {
			return p, invalid(rec.ImageField, "", "Could not read file: %v", err)
		}
		rec.Images = append(rec.Images, pt)
	}
	if masks := form.File["mask"]; len(masks) > 0 {
		fh := masks[0]
		pt, err := readPart("mask", fh.Filename, fh.Header.Get("Content-Type"), fh.Open)
		if err != nil {
			return p, invalid("mask", "", "Could not read file: %v", err)
		}
		rec.Mask = &pt
	}
	for i, pt := range rec.Images {
		if rerr := checkImagePart(rec.ImageField, i, pt); rerr != nil {
			return p, rerr
		}
	}
	if rec.Mask != nil {
		if rec.Mask.ContentType != "image/png" || http.DetectContentType(rec.Mask.Data) != "image/png" {
			return p, invalid("mask", "invalid_image_format", "Invalid mask: the mask must be a PNG file (got '%s').", rec.Mask.ContentType)
		}
		if rerr := checkMask("mask", rec.Mask.Data, rec.Images[0].Data); rerr != nil {
			return p, rerr
		}
	}
	return p, nil
}

func readPart[F io.ReadCloser](field, filename, contentType string, open func() (F, error)) (Part, error) {
	f, err := open()
	if err != nil {
		return Part{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return Part{}, err
	}
	return Part{Field: field, Filename: filename, ContentType: contentType, Data: data}, nil
}

// inject applies fault f. It reports whether the response is complete; a
// stream fault leaves the stream to s.stream.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, rec *Request, p params, f Fault, edit bool) bool {
	switch f.Kind {
	case FaultReset:
		s.reset(w, rec)
		return true
	case FaultStall:
		s.record(rec)
		s.stall(r)
		return true
	case FaultTruncated, FaultStallBody:
		if p.Stream {
			s.stream(w, r, rec, p, edit, &f)
		} else {
			s.respond(w, r, rec, p, edit, &f)
		}
		return true
	case FaultStreamError:
		if p.Stream {
			s.stream(w, r, rec, p, edit, &f)
			return true
		}
	}
	s.errorFault(w, rec, p.Model, f)
	return true
}

// reset records rec and resets the connection without answering.
func (s *Server) reset(w http.ResponseWriter, rec *Request) {
	s.record(rec)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("openaitest: hijack: %v", err))
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // send RST, not FIN
	}
	_ = conn.Close()
}

// errorFault answers with the error body of fault f, for model.
func (s *Server) errorFault(w http.ResponseWriter, rec *Request, model string, f Fault) {
	status, body := f.errorBody(model, maskKey(rec.APIKey))
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.RetryAfterMS != "" {
		w.Header().Set("retry-after-ms", f.RetryAfterMS)
	}
	if f.Kind == FaultRateLimit {
		w.Header().Set("x-ratelimit-limit-requests", "5")
		w.Header().Set("x-ratelimit-remaining-requests", "0")
	}
	s.finish(rec, w, status, body)
}

// stall waits until the client gives up, the server closes or StallLimit
// (default one minute) passes.
func (s *Server) stall(r *http.Request) {
	limit := s.StallLimit
	if limit <= 0 {
		limit = time.Minute
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.closing:
	case <-t.C:
	}
}

// respond answers a non-streaming request with an ImagesResponse. A fault of
// kind FaultTruncated or FaultStallBody sends only half the body while
// promising all of it; FaultStallBody then stalls.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rec *Request, p params, edit bool, f *Fault) {
	truncated := f != nil
	format := orDefault(p.OutputFormat, "png")
	resp := imagesResponse{
		Created:      time.Now().Unix(),
		Background:   background(p.Background),
		OutputFormat: format,
		Size:         responseSize(p.Size),
		Quality:      responseQuality(p.Quality),
	}
	var (
		usage  usage
		finals [][]byte
	)
	for range p.N {
		data, err := s.newImage(format, p.Size, false)
		if err != nil {
			s.finish(rec, w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: "server_error"})
			return
		}
		finals = append(finals, data)
		resp.Data = append(resp.Data, imageData{B64JSON: base64.StdEncoding.EncodeToString(data)})
		usage = usage.add(s.usage(p, len(rec.Images)))
	}
	resp.Usage = &usage
	body, _ := json.Marshal(resp)
	rec.Status = http.StatusOK
	if !truncated { // a truncated body delivers no image
		rec.Returned = finals
		s.keep(finals, nil)
	}
	s.record(rec)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-request-id", s.requestID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if truncated {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
	if f != nil && f.Kind == FaultStallBody {
		_ = http.NewResponseController(w).Flush()
		s.stall(r)
	}
	// A handler that writes less than its declared Content-Length makes the
	// server close the connection: the client sees an unexpected EOF.
}

// stream answers with server-sent events: partial images then a completed
// event for each image. A fault of kind FaultTruncated, FaultStallBody or
// FaultStreamError cuts the stream after the first partial image (then
// FaultStallBody stalls and FaultStreamError sends an error event). The
// request is recorded before the first byte is sent, so a client that has
// its answer always finds its request in Requests.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, rec *Request, p params, edit bool, f *Fault) {
	prefix := "image_generation"
	if edit {
		prefix = "image_edit"
	}
	format := orDefault(p.OutputFormat, "png")
	type sse struct {
		event string
		data  any
	}
	var events []sse
	event := func(typ string, data []byte) streamEvent {
		return streamEvent{
			Type:         typ,
			B64JSON:      base64.StdEncoding.EncodeToString(data),
			CreatedAt:    time.Now().Unix(),
			Size:         orDefault(p.Size, "auto"),
			Quality:      orDefault(p.Quality, "auto"),
			Background:   orDefault(p.Background, "auto"),
			OutputFormat: format,
		}
	}
	var finals, partials [][]byte
images:
	for range p.N {
		n := p.PartialImages
		if f != nil {
			n = 1
		}
		for i := range n {
			data, err := s.newImage(format, p.Size, true)
			if err != nil {
				s.finish(rec, w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: "server_error"})
				return
			}
			partials = append(partials, data)
			ev := event(prefix+".partial_image", data)
			ev.PartialImageIndex = ptr(i)
			events = append(events, sse{ev.Type, ev})
		}
		if f != nil {
			if f.Kind == FaultStreamError {
				e := apiError{
					Message: orDefault(f.Message, "The server had an error while processing your request. Sorry about that!"),
					Type:    orDefault(f.Type, "server_error"),
				}
				if f.Code != "" {
					e.Code = ptr(f.Code)
				}
				rec.Error = orDefault(f.Code, e.Type)
				if f.Flat {
					events = append(events, sse{"error", e})
				} else {
					events = append(events, sse{"error", map[string]any{"type": "error", "error": e}})
				}
			}
			break images
		}
		data, err := s.newImage(format, p.Size, false)
		if err != nil {
			s.finish(rec, w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: "server_error"})
			return
		}
		finals = append(finals, data)
		ev := event(prefix+".completed", data)
		u := s.usage(p, len(rec.Images))
		ev.Usage = &u
		events = append(events, sse{ev.Type, ev})
	}

	rec.Status = http.StatusOK
	rec.Returned, rec.Partials = finals, partials
	s.record(rec)
	s.keep(finals, partials)

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

// newImage returns a fresh image with the next sequence number.
func (s *Server) newImage(format, size string, partial bool) ([]byte, error) {
	s.mu.Lock()
	s.seq++
	seq, full := s.seq, s.FullSize
	s.mu.Unlock()
	scale := 64
	if full {
		scale = 1
		if _, _, ok := parseSize(size); !ok {
			size = "1024x1024"
		}
	}
	return makeImage(seq, format, size, scale, partial)
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("req_fake%06d", len(s.requests))
}

func (s *Server) record(rec *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, *rec)
}

func (s *Server) keep(finals, partials [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images = append(s.images, finals...)
	s.partials = append(s.partials, partials...)
}

// finish records rec and answers with an OpenAI error envelope.
func (s *Server) finish(rec *Request, w http.ResponseWriter, status int, e apiError) {
	rec.Status = status
	rec.Error = e.Type
	if e.Code != nil {
		rec.Error = *e.Code
	}
	s.record(rec)
	w.Header().Set("x-request-id", s.requestID())
	writeError(w, status, e)
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	body, _ := json.Marshal(map[string]apiError{"error": e})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// usage computes plausible token counts for one image of request p.
func (s *Server) usage(p params, inputs int) usage {
	text := int64(len(p.Prompt)+3) / 4
	img := int64(inputs) * 388
	out := map[string]int64{"low": 272, "high": 4160}[p.Quality]
	if out == 0 {
		out = 1056
	}
	if w, h, ok := parseSize(p.Size); ok {
		out = out * int64(w*h) / (1024 * 1024)
	}
	u := usage{InputTokens: text + img, OutputTokens: out}
	u.InputTokensDetails.TextTokens = text
	u.InputTokensDetails.ImageTokens = img
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// maskKey hides all but the ends of key, as OpenAI does in its 401 message.
func maskKey(key string) string {
	if len(key) < 8 {
		return "***"
	}
	return key[:3] + strings.Repeat("*", 8) + key[len(key)-4:]
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func background(b string) string {
	if b == "transparent" {
		return b
	}
	return "opaque"
}

func responseSize(size string) string {
	if size == "" || size == "auto" {
		return "1024x1024"
	}
	return size
}

func responseQuality(q string) string {
	if q == "" || q == "auto" {
		return "medium"
	}
	return q
}

// Wire types of the spec: ImagesResponse, ImagesUsage, ImageGenStreamEvent
// and ImageEditStreamEvent.
type (
	imagesResponse struct {
		Created      int64       `json:"created"`
		Data         []imageData `json:"data"`
		Background   string      `json:"background,omitempty"`
		OutputFormat string      `json:"output_format,omitempty"`
		Size         string      `json:"size,omitempty"`
		Quality      string      `json:"quality,omitempty"`
		Usage        *usage      `json:"usage,omitempty"`
	}
	imageData struct {
		B64JSON string `json:"b64_json"`
	}
	usage struct {
		TotalTokens        int64 `json:"total_tokens"`
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		InputTokensDetails struct {
			TextTokens  int64 `json:"text_tokens"`
			ImageTokens int64 `json:"image_tokens"`
		} `json:"input_tokens_details"`
	}
	streamEvent struct {
		Type              string `json:"type"`
		B64JSON           string `json:"b64_json"`
		CreatedAt         int64  `json:"created_at"`
		Size              string `json:"size"`
		Quality           string `json:"quality"`
		Background        string `json:"background"`
		OutputFormat      string `json:"output_format"`
		PartialImageIndex *int   `json:"partial_image_index,omitempty"`
		Usage             *usage `json:"usage,omitempty"`
	}
)

func (u usage) add(v usage) usage {
	u.TotalTokens += v.TotalTokens
	u.InputTokens += v.InputTokens
	u.OutputTokens += v.OutputTokens
	u.InputTokensDetails.TextTokens += v.InputTokensDetails.TextTokens
	u.InputTokensDetails.ImageTokens += v.InputTokensDetails.ImageTokens
	return u
}
