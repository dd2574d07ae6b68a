package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

func generate(g *Generator) (core.Result, error) {
	return g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
}

// TestFaultsNotRetried checks the failures that must never be retried: the
// fake sees exactly one request.
func TestFaultsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   openaitest.Fault
		kind    core.ErrorKind
		message string
	}{
		{"moderation", openaitest.ModerationBlocked(), core.Refused, msgRefused},
		{"quota", openaitest.InsufficientQuota(), core.Quota, msgQuota},
		{"unauthorized", openaitest.Unauthorized(), core.Unavailable, msgBadKey},
		{"forbidden", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 403, Type: "invalid_request_error", Message: "Project does not have access to model gpt-image-2"}, core.Unavailable, msgBadKey},
		{"unverified", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 403, Type: "invalid_request_error", Message: "Your organization must be verified to use the model `gpt-image-2`."}, core.Unavailable, msgForbidden},
		{"user error with safety wording", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "image_generation_user_error", Message: "Your request was rejected as a result of our safety system."}, core.Refused, msgRefused},
		{"user error about the image", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "image_generation_user_error", Message: "Invalid image file or mode for image 1."}, core.Invalid, "OpenAI could not serve this request: Invalid image file or mode for image 1."},
		{"billing limit", openaitest.Fault{Kind: openaitest.FaultCustom, Status: 400, Type: "invalid_request_error", Code: "billing_hard_limit_reached", Message: "Billing hard limit has been reached"}, core.Quota, msgQuota},
		{"not implemented", openaitest.ServerError(501), core.Unavailable, "OpenAI is having trouble (HTTP 501); try again later."},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				srv, g, w := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = stream, 2 })
				srv.Fail(tc.fault)
				res, err := generate(g)
				ce := wantKind(t, err, tc.kind)
				if ce.Message != tc.message {
					t.Errorf("message = %q, want %q", ce.Message, tc.message)
				}
				if n := len(srv.Requests()); n != 1 || res.Attempts != 1 || len(w.all()) != 0 {
					t.Errorf("fake saw %d requests, attempts %d, waits %v; want exactly one", n, res.Attempts, w.all())
				}
				if srv.LastRequest(t).Stream != stream {
					t.Errorf("stream = %v", !stream)
				}
			})
		}
	}
}

func TestWrongKeyNotLeaked(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	srv.Key = "sk-the-right-one"
	_, err := generate(g)
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != msgBadKey {
		t.Errorf("message %q", ce.Message)
	}
	if r := srv.LastRequest(t); r.Status != 401 || r.Error != "invalid_api_key" {
		t.Errorf("fake answered %d %s", r.Status, r.Error)
	}
}

func TestInvalidRequestFromOpenAI(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	_, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1, Model: "gpt-image-9"})
	ce := wantKind(t, err, core.Invalid)
	if !strings.Contains(ce.Message, "The model `gpt-image-9` does not exist") {
		t.Errorf("message %q should carry OpenAI's explanation", ce.Message)
	}
	if len(srv.Requests()) != 1 {
		t.Errorf("retried a 404")
	}
}

// TestFaultsExhaustRetries checks that transient failures are retried up to
// MaxRetries and then reported with the right kind.
func TestFaultsExhaustRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   openaitest.Fault
		stream  bool
		kind    core.ErrorKind
		message string
	}{
		{"rate limit", openaitest.RateLimited(5 * time.Millisecond), false, core.RateLimited, msgRateLimited},
		{"500", openaitest.ServerError(500), false, core.Unavailable, "OpenAI is having trouble (HTTP 500); try again later."},
		{"502", openaitest.ServerError(502), false, core.Unavailable, "OpenAI is having trouble (HTTP 502); try again later."},
		{"503", openaitest.ServerError(503), false, core.Unavailable, "OpenAI is having trouble (HTTP 503); try again later."},
		{"504", openaitest.ServerError(504), false, core.Unavailable, "OpenAI is having trouble (HTTP 504); try again later."},
		{"reset", openaitest.ConnectionReset(), false, core.Unavailable, msgConnection},
		{"truncated body", openaitest.Truncated(), false, core.Unavailable, msgTruncated},
		{"truncated stream", openaitest.Truncated(), true, core.Unavailable, msgTruncated},
		{"stream error", openaitest.StreamError(), true, core.Unavailable, msgStreamError},
		{"flat stream error", openaitest.Fault{Kind: openaitest.FaultStreamError, Flat: true}, true, core.Unavailable, msgStreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, w := newTestGenerator(t, func(c *Config) {
				c.MaxRetries = 2
				c.Stream, c.PartialImages = tc.stream, 1
			})
			srv.Fail(tc.fault, tc.fault, tc.fault)
			res, err := generate(g)
			ce := wantKind(t, err, tc.kind)
			if ce.Message != tc.message {
				t.Errorf("message = %q, want %q", ce.Message, tc.message)
			}
			if ce.Err == nil {
				t.Error("no underlying error kept for the logs")
			}
			if n := len(srv.Requests()); n != 3 || res.Attempts != 3 || len(w.all()) != 2 {
				t.Errorf("fake saw %d requests, attempts %d, waits %v; want 3, 3, 2", n, res.Attempts, w.all())
			}
			if srv.PendingFaults() != 0 {
				t.Errorf("%d faults unused", srv.PendingFaults())
			}
		})
	}
}

// TestRetryThenSuccess checks recovery after one transient failure.
func TestRetryThenSuccess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    openaitest.Fault
		stream   bool
		wantWait time.Duration // 0: any backoff
	}{
		{"429 with retry-after-ms", openaitest.RateLimited(1500 * time.Millisecond), false, 1500 * time.Millisecond},
		{"429 with Retry-After seconds", openaitest.Fault{Kind: openaitest.FaultRateLimit, RetryAfter: "7"}, false, 7 * time.Second},
		{"503 with Retry-After", openaitest.Fault{Kind: openaitest.FaultServerError, Status: 503, RetryAfter: "2"}, false, 2 * time.Second},
		{"500", openaitest.ServerError(500), false, 0},
		{"503", openaitest.ServerError(503), false, 0},
		{"reset", openaitest.ConnectionReset(), false, 0},
		{"truncated", openaitest.Truncated(), false, 0},
		{"stream error", openaitest.StreamError(), true, 0},
		{"429 mid-stream", openaitest.Fault{Kind: openaitest.FaultStreamError, Code: "rate_limit_exceeded", Type: "requests"}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, w := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = tc.stream, 1 })
			srv.Fail(tc.fault)
			res, err := generate(g)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if res.Attempts != 2 || len(srv.Requests()) != 2 {
				t.Errorf("attempts %d, fake saw %d requests; want 2", res.Attempts, len(srv.Requests()))
			}
			if !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
				t.Error("result differs from the image returned")
			}
			waits := w.all()
			if len(waits) != 1 {
				t.Fatalf("waits %v, want one", waits)
			}
			if tc.wantWait != 0 && waits[0] != tc.wantWait {
				t.Errorf("waited %v, want %v from the headers", waits[0], tc.wantWait)
			}
			if tc.wantWait == 0 && waits[0] > g.cfg.RetryBaseDelay {
				t.Errorf("first backoff %v above base %v", waits[0], g.cfg.RetryBaseDelay)
			}
		})
	}
}

func TestPartialIndexesIncreaseAcrossRetries(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	srv.Fail(openaitest.StreamError())
	var idx []int
	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindGenerate, Prompt: "a fox", N: 1,
		Progress: func(p core.Partial) { idx = append(idx, p.Index) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(idx) != 3 || idx[0] != 0 || idx[1] != 1 || idx[2] != 2 {
		t.Errorf("attempts %d, partial indexes %v; want 2 and [0 1 2]", res.Attempts, idx)
	}
}

func TestModerationMidStreamNotRetried(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	srv.Fail(openaitest.Fault{Kind: openaitest.FaultStreamError, Type: "image_generation_user_error", Code: "moderation_blocked",
		Message: "Your request was rejected by the safety system."})
	_, err := generate(g)
	wantKind(t, err, core.Refused)
	if len(srv.Requests()) != 1 {
		t.Error("moderation retried")
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	srv, g, w := newTestGenerator(t, nil)
	srv.Fail(openaitest.Fault{Kind: openaitest.FaultRateLimit, RetryAfter: "120"})
	res, err := generate(g)
	wantKind(t, err, core.RateLimited)
	if res.Attempts != 1 || len(w.all()) != 0 {
		t.Errorf("attempts %d waits %v: a two-minute Retry-After should not be waited for", res.Attempts, w.all())
	}
}

func TestRetryWaitBeyondDeadline(t *testing.T) {
	srv, g, w := newTestGenerator(t, nil)
	srv.Fail(openaitest.RateLimited(20 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	wantKind(t, err, core.RateLimited)
	if len(w.all()) != 0 {
		t.Errorf("waited %v past the context's deadline", w.all())
	}
}

func TestCancelDuringRetryWait(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	g.sleep = sleep // really wait, so cancellation has something to interrupt
	srv.Fail(openaitest.RateLimited(10 * time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	res, err := g.Generate(ctx, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	if time.Since(start) > 3*time.Second {
		t.Errorf("Generate took %v after cancellation", time.Since(start))
	}
	ce := wantKind(t, err, core.Unavailable)
	if !errors.Is(err, context.Canceled) || ce.Message != msgCancelled {
		t.Errorf("error %v, want a cancellation", err)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

func TestStalledResponseTimesOut(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Timeout, c.MaxRetries = 150*time.Millisecond, 0 })
	srv.Fail(openaitest.Stall())
	start := time.Now()
	res, err := generate(g)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to give up", d)
	}
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != "OpenAI did not answer in time (timed out after 150ms); try again later." {
		t.Errorf("message %q", ce.Message)
	}
	if res.Attempts != 1 || len(srv.Requests()) != 1 {
		t.Errorf("attempts %d", res.Attempts)
	}
}

func TestStalledResponseRetried(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Timeout = 150 * time.Millisecond })
	srv.Fail(openaitest.Stall())
	res, err := generate(g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 {
		t.Errorf("attempts %d, want 2", res.Attempts)
	}
}

// TestUnreadableErrorBody covers an error answer that is not OpenAI's JSON
// envelope, such as a proxy's HTML page: the SDK reports a JSON error, but
// the status still decides.
func TestUnreadableErrorBody(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
	}))
	defer ts.Close()
	g, err := New(Config{APIKey: testKey, BaseURL: ts.URL + "/v1", MaxRetries: 1, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.sleep = (&waits{}).sleep
	res, err := generate(g)
	ce := wantKind(t, err, core.Unavailable)
	if ce.Message != "OpenAI is having trouble (HTTP 502); try again later." {
		t.Errorf("message %q (error %v)", ce.Message, err)
	}
	if calls.Load() != 2 || res.Attempts != 2 {
		t.Errorf("calls %d attempts %d, want 2 (502 is retried)", calls.Load(), res.Attempts)
	}
}

func TestBadBase64IsRetried(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"!!!not base64"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"iVBORw0KGgo="}]}`))
	}))
	defer ts.Close()
	g, err := New(Config{APIKey: testKey, BaseURL: ts.URL, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	g.sleep = (&waits{}).sleep
	res, err := generate(g)
	if err != nil {
		t.Fatal(err)
	}
	// No output_format in the answer: the media type is sniffed.
	if res.Attempts != 2 || res.Images[0].MIME != "image/png" || len(res.Images[0].Data) != 8 {
		t.Errorf("attempts %d image %+v", res.Attempts, res.Images[0])
	}
}
