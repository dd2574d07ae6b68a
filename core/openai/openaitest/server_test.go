package openaitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

const key = "sk-fake-test"

// envelope is OpenAI's error answer.
type envelope struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func postJSON(t *testing.T, s *Server, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/images/generations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

type filePart struct {
	field, name, ctype string
	data               []byte
}

func postMultipart(t *testing.T, s *Server, fields map[string]string, files []filePart) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+f.field+`"; filename="`+f.name+`"`)
		h.Set("Content-Type", f.ctype)
		w, _ := mw.CreatePart(h)
		_, _ = w.Write(f.data)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", s.URL()+"/images/edits", &buf)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// wantError checks an error answer's status, param and code.
func wantError(t *testing.T, res *http.Response, status int, param, code string) string {
	t.Helper()
	if res.StatusCode != status {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, body)
	}
	var raw map[string]map[string]json.RawMessage
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	for _, f := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][f]; !ok {
			t.Errorf("error object lacks %q: %s", f, body)
		}
	}
	var env envelope
	_ = json.Unmarshal(body, &env)
	if param != "" && (env.Error.Param == nil || *env.Error.Param != param) {
		t.Errorf("param %v, want %q: %s", env.Error.Param, param, body)
	}
	if code != "" && (env.Error.Code == nil || *env.Error.Code != code) {
		t.Errorf("code %v, want %q: %s", env.Error.Code, code, body)
	}
	return env.Error.Message
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	b, err := makeImage(1, "png", "", 64, false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuth(t *testing.T) {
	s := NewServer(t)
	req, _ := http.NewRequest("POST", s.URL()+"/images/generations", strings.NewReader(`{"prompt":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	wantError(t, res, 401, "", "")

	s.Key = "sk-other-key-1234"
	wantError(t, postJSON(t, s, `{"prompt":"x"}`), 401, "", "invalid_api_key")
	if r := s.LastRequest(t); r.APIKey != key || r.Status != 401 {
		t.Errorf("recorded %+v", r)
	}
}

func TestGenerationValidation(t *testing.T) {
	s := NewServer(t)
	long := strings.Repeat("a", 32001)
	for _, tc := range []struct {
		body, param, code string
		status            int
	}{
		{`{"model":"gpt-image-2"}`, "prompt", "missing_required_parameter", 400},
		{`{"prompt":"` + long + `"}`, "prompt", "string_above_max_length", 400},
		{`{"prompt":"x","n":11}`, "n", "integer_above_max_value", 400},
		{`{"prompt":"x","n":0}`, "n", "integer_below_min_value", 400},
		{`{"prompt":"x","n":"2"}`, "n", "invalid_type", 400},
		{`{"prompt":"x","quality":"ultra"}`, "quality", "invalid_value", 400},
		{`{"prompt":"x","output_format":"gif"}`, "output_format", "invalid_value", 400},
		{`{"prompt":"x","background":"clear"}`, "background", "invalid_value", 400},
		{`{"prompt":"x","moderation":"none"}`, "moderation", "invalid_value", 400},
		{`{"prompt":"x","partial_images":4,"stream":true}`, "partial_images", "integer_above_max_value", 400},
		{`{"prompt":"x","stream":"yes"}`, "stream", "invalid_type", 400},
		{`{"prompt":"x","model":"gpt-image-1.5","size":"1000x1000"}`, "size", "invalid_value", 400},
		{`{"prompt":"x","model":"gpt-image-2","size":"1000x1000"}`, "size", "invalid_value", 400},
		{`{"prompt":"x","model":"gpt-image-2","size":"4096x1024"}`, "size", "invalid_value", 400},
		{`{"prompt":"x","model":"gpt-image-2","size":"big"}`, "size", "invalid_value", 400},
		{`{"prompt":"x","background":"transparent","output_format":"jpeg"}`, "background", "invalid_value", 400},
		{`{"prompt":"x","response_format":"url"}`, "response_format", "unknown_parameter", 400},
		{`{"prompt":"x","input_fidelity":"high"}`, "input_fidelity", "unknown_parameter", 400},
		{`{"prompt":"x","seed":1}`, "seed", "unknown_parameter", 400},
		{`{"prompt":"x","model":"dall-e-3"}`, "model", "model_not_found", 404},
		{`{"prompt":"x","model":"gpt-image-1"}`, "model", "model_not_found", 404},
	} {
		wantError(t, postJSON(t, s, tc.body), tc.status, tc.param, tc.code)
	}
	for _, ok := range []string{
		`{"prompt":"x","model":"gpt-image-2","size":"3840x2160","n":null}`,
		`{"prompt":"x","model":"gpt-image-1.5","size":"1536x1024","quality":"low","output_format":"webp","background":"transparent","moderation":"low"}`,
		`{"prompt":"x","model":"gpt-image-2.5-flare","size":"1536x864"}`,
	} {
		if res := postJSON(t, s, ok); res.StatusCode != 200 {
			body, _ := io.ReadAll(res.Body)
			t.Errorf("%s: %d %s", ok, res.StatusCode, body)
		}
	}
}

func TestGenerationResponse(t *testing.T) {
	s := NewServer(t)
	res := postJSON(t, s, `{"prompt":"a fox","model":"gpt-image-2","n":2,"size":"1536x1024","quality":"high"}`)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var body struct {
		Created int64 `json:"created"`
		Data    []struct {
			B64JSON string `json:"b64_json"`
		} `json:"data"`
		OutputFormat string `json:"output_format"`
		Size         string `json:"size"`
		Quality      string `json:"quality"`
		Usage        struct {
			TotalTokens  int64 `json:"total_tokens"`
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Created == 0 || len(body.Data) != 2 || body.OutputFormat != "png" || body.Size != "1536x1024" || body.Quality != "high" {
		t.Errorf("response %+v", body)
	}
	if body.Usage.OutputTokens != 2*4160*1536*1024/(1024*1024) || body.Usage.TotalTokens != body.Usage.InputTokens+body.Usage.OutputTokens {
		t.Errorf("usage %+v", body.Usage)
	}
	var imgs [][]byte
	for _, d := range body.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if img.Bounds().Dx() != 24 || img.Bounds().Dy() != 16 {
			t.Errorf("image %v, want 24x16 (1536x1024 / 64)", img.Bounds())
		}
		if !bytes.Contains(b, []byte("caBX"+ProvenanceMarker)) {
			t.Error("no provenance chunk")
		}
		imgs = append(imgs, b)
	}
	if bytes.Equal(imgs[0], imgs[1]) {
		t.Error("images identical")
	}
	r := s.LastRequest(t)
	if len(r.Returned) != 2 || !bytes.Equal(r.Returned[0], imgs[0]) || !bytes.Equal(s.Images()[1], imgs[1]) {
		t.Error("returned images not recorded")
	}
	if r.Model != "gpt-image-2" || r.N != 2 || r.Prompt != "a fox" || r.Quality != "high" {
		t.Errorf("recorded %+v", r)
	}
}

// readSSE parses an event stream into (event, data) pairs.
func readSSE(t *testing.T, r io.Reader) (events []string, data []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<24)
	var ev string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
			events = append(events, ev)
			data = append(data, m)
		}
	}
	return events, data
}

func TestGenerationStream(t *testing.T) {
	s := NewServer(t)
	res := postJSON(t, s, `{"prompt":"a fox","model":"gpt-image-2","stream":true,"partial_images":2}`)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	events, data := readSSE(t, res.Body)
	want := []string{"image_generation.partial_image", "image_generation.partial_image", "image_generation.completed"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", events, want)
	}
	for i, d := range data {
		if d["type"] != events[i] {
			t.Errorf("event %q carries type %v", events[i], d["type"])
		}
		for _, f := range []string{"b64_json", "created_at", "size", "quality", "background", "output_format"} {
			if _, ok := d[f]; !ok {
				t.Errorf("event %d lacks %s", i, f)
			}
		}
	}
	if data[1]["partial_image_index"] != float64(1) || data[2]["usage"] == nil {
		t.Errorf("index %v usage %v", data[1]["partial_image_index"], data[2]["usage"])
	}
	if len(s.Partials()) != 2 || len(s.Images()) != 1 {
		t.Errorf("kept %d partials %d images", len(s.Partials()), len(s.Images()))
	}
}

func TestEdits(t *testing.T) {
	s := NewServer(t)
	img := pngBytes(t)
	jpg, _ := makeImage(2, "jpeg", "", 64, false)
	res := postMultipart(t, s, map[string]string{"prompt": "gift basket", "model": "gpt-image-1.5", "input_fidelity": "high"},
		[]filePart{{"image[]", "a.png", "image/png", img}, {"image[]", "b.jpg", "image/jpeg", jpg}, {"mask", "m.png", "image/png", alphaMask(t, 16, 16)}})
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	r := s.LastRequest(t)
	if r.ImageField != "image[]" || len(r.Images) != 2 || r.Images[1].Filename != "b.jpg" || !bytes.Equal(r.Images[1].Data, jpg) || r.Mask == nil {
		t.Errorf("recorded %+v", r)
	}

	res = postMultipart(t, s, map[string]string{"prompt": "x", "stream": "true", "partial_images": "1"},
		[]filePart{{"image", "a.png", "image/png", img}})
	events, _ := readSSE(t, res.Body)
	if strings.Join(events, ",") != "image_edit.partial_image,image_edit.completed" {
		t.Errorf("edit stream events %v", events)
	}

	for _, tc := range []struct {
		fields      map[string]string
		files       []filePart
		param, code string
	}{
		{map[string]string{"prompt": "x"}, nil, "image", "missing_required_parameter"},
		{map[string]string{"prompt": "x"}, []filePart{{"image", "a.bin", "application/octet-stream", img}}, "image", "invalid_image_format"},
		{map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", []byte("not a png")}}, "image", "invalid_image"},
		{map[string]string{"prompt": "x", "moderation": "low"}, []filePart{{"image", "a.png", "image/png", img}}, "moderation", "unknown_parameter"},
		{map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", img}, {"image[]", "b.png", "image/png", img}}, "image", "invalid_value"},
		{map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", img}, {"image", "b.png", "image/png", img}}, "image", "invalid_value"},
		{map[string]string{"prompt": "x"}, []filePart{{"image", "a.png", "image/png", img}, {"mask", "m.jpg", "image/jpeg", jpg}}, "mask", "invalid_image_format"},
		{map[string]string{"prompt": "x", "model": "gpt-image-2", "input_fidelity": "high"}, []filePart{{"image", "a.png", "image/png", img}}, "input_fidelity", "unsupported_parameter"},
		{map[string]string{"prompt": "x", "n": "two"}, []filePart{{"image", "a.png", "image/png", img}}, "n", "invalid_type"},
		{map[string]string{"prompt": "x", "image": "a string"}, []filePart{{"image[]", "a.png", "image/png", img}}, "image", "invalid_type"},
		{map[string]string{"prompt": "x"}, seventeen(img), "image", "array_above_max_length"},
	} {
		wantError(t, postMultipart(t, s, tc.fields, tc.files), 400, tc.param, tc.code)
	}
}

func seventeen(img []byte) []filePart {
	var parts []filePart
	for range 17 {
		parts = append(parts, filePart{"image[]", "a.png", "image/png", img})
	}
	return parts
}

func TestFaultHeadersAndQueue(t *testing.T) {
	s := NewServer(t)
	s.Fail(RateLimited(1500*time.Millisecond), InsufficientQuota())
	// An invalid request does not use up a fault.
	wantError(t, postJSON(t, s, `{"prompt":""}`), 400, "prompt", "")
	res := postJSON(t, s, `{"prompt":"x"}`)
	wantError(t, res, 429, "", "rate_limit_exceeded")
	if res.Header.Get("Retry-After") != "2" || res.Header.Get("retry-after-ms") != "1500" {
		t.Errorf("headers %v", res.Header)
	}
	wantError(t, postJSON(t, s, `{"prompt":"x"}`), 429, "", "insufficient_quota")
	if res := postJSON(t, s, `{"prompt":"x"}`); res.StatusCode != 200 {
		t.Errorf("status %d after faults ran out", res.StatusCode)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[1].Fault != FaultRateLimit || reqs[2].Error != "insufficient_quota" {
		t.Errorf("recorded %+v", reqs)
	}
	s.Fail(ModerationBlocked())
	wantError(t, postJSON(t, s, `{"prompt":"x"}`), 400, "", "moderation_blocked")
}

func TestFaultTransport(t *testing.T) {
	s := NewServer(t)
	s.Fail(ConnectionReset())
	req, _ := http.NewRequest("POST", s.URL()+"/images/generations", strings.NewReader(`{"prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Error("reset: got an answer")
	}

	s.Fail(Truncated())
	res := postJSON(t, s, `{"prompt":"x"}`)
	if _, err := io.ReadAll(res.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body read: %v", err)
	}

	s.Fail(Stall())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "POST", s.URL()+"/images/generations", strings.NewReader(`{"prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if res != nil {
			res.Body.Close()
		}
		t.Errorf("stall: %v", err)
	}

	s.Fail(StreamError())
	res = postJSON(t, s, `{"prompt":"x","stream":true,"partial_images":3}`)
	events, data := readSSE(t, res.Body)
	if strings.Join(events, ",") != "image_generation.partial_image,error" || data[1]["error"] == nil {
		t.Errorf("stream error events %v %v", events, data)
	}
}

// TestFaultStallBody checks that the answer starts (status, headers, the
// first bytes) and then stalls until the client gives up.
func TestFaultStallBody(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		stream     bool
	}{
		{"json", `{"prompt":"x"}`, false},
		{"stream", `{"prompt":"x","stream":true,"partial_images":2}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t)
			s.Fail(StallBody())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/images/generations", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			// The start of the answer arrives…
			first := make([]byte, 16)
			if _, err := io.ReadFull(res.Body, first); err != nil {
				t.Fatalf("reading the start: %v", err)
			}
			if want := map[bool]string{false: `{"created"`, true: "event: image_ge"}[tc.stream]; !strings.HasPrefix(string(first), want) {
				t.Errorf("answer starts %q", first)
			}
			// …then nothing, until the client gives up.
			got := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(res.Body)
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("the body ended (%v) instead of stalling", err)
			case <-time.After(200 * time.Millisecond):
			}
			cancel()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the read did not end after the client gave up")
			}
			if r := s.LastRequest(t); r.Fault != FaultStallBody || len(r.Returned) != 0 {
				t.Errorf("recorded fault %q, returned %d images", r.Fault, len(r.Returned))
			}
		})
	}
}

// TestArrivals checks that OnArrive runs before a request is answered, for
// rejected requests too.
func TestArrivals(t *testing.T) {
	s := NewServer(t)
	var (
		mu       sync.Mutex
		seen     []int
		answered []int
	)
	s.OnArrive = func(n int) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, n)
		answered = append(answered, len(s.Requests()))
	}
	wantError(t, postJSON(t, s, `{"prompt":""}`), 400, "prompt", "")
	if res := postJSON(t, s, `{"prompt":"x"}`); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if s.Arrivals() != 2 || len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
		t.Errorf("arrivals %d, OnArrive saw %v", s.Arrivals(), seen)
	}
	if answered[0] != 0 || answered[1] != 1 {
		t.Errorf("requests recorded when each arrived: %v, want [0 1]", answered)
	}
}
