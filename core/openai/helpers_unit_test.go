package openai

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
)

func TestSnapSize(t *testing.T) {
	for _, tc := range []struct {
		w, h int
		want string
	}{
		{1024, 1024, "1024x1024"},
		{800, 800, "1024x1024"},
		{1920, 1080, "1536x1024"}, // 16:9 is nearer 3:2 than 1:1
		{1080, 1920, "1024x1536"},
		{1100, 1000, "1024x1024"}, // 1.1 is nearer 1 than 1.5
		{1300, 1000, "1536x1024"}, // 1.3 is nearer 1.5 than 1 on a log scale
		{4000, 1000, "1536x1024"},
		{1000, 4000, "1024x1536"},
		{1536, 1024, "1536x1024"},
	} {
		if got := SnapSize(tc.w, tc.h); got != tc.want {
			t.Errorf("SnapSize(%d, %d) = %s, want %s", tc.w, tc.h, got, tc.want)
		}
	}
}

func TestSizeForAspect(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		want  string
	}{
		{1, "1024x1024"},
		{16.0 / 9, "1536x864"},
		{9.0 / 16, "864x1536"},
		{4.0 / 3, "1536x1152"},
		{3, "1536x512"},
		{10, "1536x512"}, // clamped
		{21.0 / 9, "1536x656"},
	} {
		got := sizeForAspect(tc.ratio)
		if got != tc.want {
			t.Errorf("sizeForAspect(%v) = %s, want %s", tc.ratio, got, tc.want)
		}
		w, h, _ := parseSize(got)
		if why := checkGPTImage2Size(w, h); why != "" {
			t.Errorf("sizeForAspect(%v) = %s is not a valid gpt-image-2 size: %s", tc.ratio, got, why)
		}
	}
}

func TestModelFamilies(t *testing.T) {
	for model, want := range map[string]bool{
		"gpt-image-2": true, "gpt-image-2-2026-04-21": true, "gpt-image-2.5-flare": true,
		"gpt-image-2.6-sunburst": true, "GPT-IMAGE-2": true,
		"gpt-image-20": false, "gpt-image-1.5": false, "gpt-image-1-mini": false, "chatgpt-image-latest": false,
	} {
		if got := isGPTImage2(model); got != want {
			t.Errorf("isGPTImage2(%q) = %v", model, got)
		}
	}
	for model, retired := range map[string]bool{
		"gpt-image-1": true, "gpt-image-1-2025-04-15": true, "dall-e-2": true, "dall-e-3": true,
		"gpt-image-1-mini": false, "gpt-image-1.5": false, "gpt-image-2": false,
	} {
		if got := retiredReason(model) != ""; got != retired {
			t.Errorf("retiredReason(%q) retired=%v", model, got)
		}
	}
	if !supportsInputFidelity("gpt-image-1.5") || supportsInputFidelity("gpt-image-2") || supportsInputFidelity("gpt-image-1-mini") {
		t.Error("input fidelity support wrong")
	}
	if undated("gpt-image-2-2026-04-21") != "gpt-image-2" || undated("gpt-image-1-mini") != "gpt-image-1-mini" {
		t.Error("undated wrong")
	}
}

func TestParseSize(t *testing.T) {
	for s, ok := range map[string]bool{
		"1024x1024": true, "16X16": true, " 32x48 ": true,
		"0x10": false, "-1x10": false, "+1x10": false, "10x": false, "x10": false, "10*10": false, "": false,
	} {
		if _, _, got := parseSize(s); got != ok {
			t.Errorf("parseSize(%q) ok=%v", s, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    time.Duration
		ok      bool
	}{
		{"none", nil, 0, false},
		{"ms", map[string]string{"retry-after-ms": "1500"}, 1500 * time.Millisecond, true},
		{"ms wins", map[string]string{"retry-after-ms": "250", "Retry-After": "9"}, 250 * time.Millisecond, true},
		{"seconds", map[string]string{"Retry-After": "20"}, 20 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"date", map[string]string{"Retry-After": "Mon, 23 Nov 2026 12:00:30 GMT"}, 30 * time.Second, true},
		{"past date", map[string]string{"Retry-After": "Mon, 23 Nov 2026 11:00:00 GMT"}, 0, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"bad ms falls back", map[string]string{"retry-after-ms": "x", "Retry-After": "2"}, 2 * time.Second, true},
		{"huge", map[string]string{"Retry-After": "1e300"}, math.MaxInt64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			got, ok := retryAfter(h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("retryAfter = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the largest wait jitter can pick
	base, limit := 500*time.Millisecond, 30*time.Second
	for retry, want := range map[int]time.Duration{
		1: 500 * time.Millisecond, 2: time.Second, 3: 2 * time.Second, 4: 4 * time.Second,
		7: 30 * time.Second, 100: 30 * time.Second,
	} {
		if got := backoff(retry, base, limit, top); got != want {
			t.Errorf("backoff(%d) max = %v, want %v", retry, got, want)
		}
	}
	if got := backoff(3, base, limit, func(int64) int64 { return 0 }); got != 0 {
		t.Errorf("full jitter can wait 0, got %v", got)
	}
}

// TestBackoffJitterAndCap samples the real random source: every wait lies
// within [0, min(base·2^(retry-1), limit)], and the waits of one retry
// number are spread out, not all equal.
func TestBackoffJitterAndCap(t *testing.T) {
	base, limit := 100*time.Millisecond, time.Second
	for retry := 1; retry <= 8; retry++ {
		bound := min(base<<(retry-1), limit)
		seen := map[time.Duration]bool{}
		var lo, hi time.Duration = limit, 0
		for range 200 {
			d := backoff(retry, base, limit, randInt64N)
			if d < 0 || d > bound {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", retry, d, bound)
			}
			seen[d] = true
			lo, hi = min(lo, d), max(hi, d)
		}
		// 200 uniform samples: all distinct in practice, and spanning most
		// of the range (the chance of a spread under half is about 2^-190).
		if len(seen) < 100 || hi-lo < bound/2 {
			t.Errorf("backoff(%d): %d distinct waits spanning [%v, %v] of [0, %v]: not jittered", retry, len(seen), lo, hi, bound)
		}
	}
}

func TestRetryWait(t *testing.T) {
	base, limit := 100*time.Millisecond, 10*time.Second
	top := func(n int64) int64 { return n - 1 }
	zero := func(int64) int64 { return 0 }
	for _, tc := range []struct {
		name     string
		retry    int
		asked    time.Duration
		hasAsked bool
		rnd      func(int64) int64
		want     time.Duration
		ok       bool
	}{
		{"backoff without Retry-After", 3, 0, false, top, 400 * time.Millisecond, true},
		{"backoff is capped", 30, 0, false, top, limit, true},
		{"Retry-After honoured", 1, 2 * time.Second, true, zero, 2 * time.Second, true},
		{"Retry-After plus at most a fifth", 1, 2 * time.Second, true, top, 2400 * time.Millisecond, true},
		{"Retry-After with jitter is capped", 1, 9 * time.Second, true, top, limit, true},
		{"Retry-After at the cap", 1, limit, true, top, limit, true},
		{"Retry-After beyond the cap gives up", 1, limit + time.Millisecond, true, zero, 0, false},
		{"Retry-After of zero", 2, 0, true, top, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := retryWait(tc.retry, tc.asked, tc.hasAsked, base, limit, tc.rnd)
			if got != tc.want || ok != tc.ok {
				t.Errorf("retryWait = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// With the real source, a Retry-After is never shortened nor exceeded by
	// more than a fifth, and the waits differ.
	seen := map[time.Duration]bool{}
	for range 100 {
		d, ok := retryWait(1, time.Second, true, base, limit, randInt64N)
		if !ok || d < time.Second || d > 1200*time.Millisecond {
			t.Fatalf("retryWait(Retry-After 1s) = %v, %v", d, ok)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct waits after a Retry-After: not jittered", len(seen))
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleep = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("sleep ignored cancellation")
	}
	if err := sleep(context.Background(), time.Millisecond); err != nil {
		t.Error(err)
	}
}

func TestCost(t *testing.T) {
	p := Price{TextInput: 5, ImageInput: 8, Output: 30}
	u := core.Usage{InputTextTokens: 1000, InputImageTokens: 2000, OutputTokens: 10000}
	want := (1000*5 + 2000*8 + 10000*30) / 1e6
	if got := p.Cost(u); math.Abs(got-want) > 1e-12 {
		t.Errorf("Cost = %v, want %v", got, want)
	}
	g, err := New(Config{APIKey: "k", Prices: map[string]Price{"gpt-image-2": p}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := g.cost(ctx, "gpt-image-2-2026-04-21", u); math.Abs(got-want) > 1e-12 {
		t.Errorf("snapshot cost = %v, want the undated model's %v", got, want)
	}
	if got := g.cost(ctx, "gpt-image-1.5", u); got != 0 {
		t.Errorf("unpriced model cost %v, want 0", got)
	}
}

func TestUsageOf(t *testing.T) {
	if u := usageOf(100, 0, 0, 50); u.InputTextTokens != 100 || u.OutputTokens != 50 {
		t.Errorf("no breakdown: %+v", u)
	}
	if u := usageOf(100, 30, 70, 50); u.InputTextTokens != 30 || u.InputImageTokens != 70 {
		t.Errorf("breakdown: %+v", u)
	}
}

func TestIsModeration(t *testing.T) {
	for _, tc := range []struct {
		typ, code, msg string
		want           bool
	}{
		{"image_generation_user_error", "moderation_blocked", "Your request was rejected by the safety system.", true},
		{"invalid_request_error", "moderation_blocked", "", true},
		{"invalid_request_error", "content_policy_violation", "", true},
		{"image_generation_user_error", "", "Your request was rejected as a result of our safety system.", true},
		{"image_generation_user_error", "", "Invalid image file or mode for image 1.", false},
		{"image_generation_user_error", "", "Invalid 'safety_identifier': string too long.", false},
		{"invalid_request_error", "", "Your request was rejected by the safety system.", false}, // not a user_error: just invalid
		{"server_error", "", "", false},
	} {
		if got := isModeration(tc.typ, tc.code, tc.msg); got != tc.want {
			t.Errorf("isModeration(%q, %q, %q) = %v", tc.typ, tc.code, tc.msg, got)
		}
	}
}

func TestParseStreamError(t *testing.T) {
	for _, tc := range []struct {
		data string
		ok   bool
		code string
	}{
		{`{"type":"error","error":{"type":"server_error","code":"oops","message":"boom"}}`, true, "oops"},
		{`{"type":"server_error","code":null,"message":"boom","param":null}`, true, ""},
		{`{"type":"error","code":"moderation_blocked","message":"no"}`, true, "moderation_blocked"},
		{`{"type":"image_generation.heartbeat"}`, false, ""},
		{`not json`, false, ""},
	} {
		se, ok := parseStreamError([]byte(tc.data))
		if ok != tc.ok || (ok && se.Code != tc.code) {
			t.Errorf("parseStreamError(%s) = %+v, %v", tc.data, se, ok)
		}
	}
}

func TestOutputMIME(t *testing.T) {
	jpg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	if got := outputMIME("jpeg", "", jpg); got != "image/jpeg" {
		t.Error(got)
	}
	if got := outputMIME("", "png", jpg); got != "image/jpeg" {
		t.Errorf("sniffing: %s", got)
	}
	if got := outputMIME("", "webp", []byte("???")); got != "image/webp" {
		t.Errorf("fallback to requested: %s", got)
	}
}

func TestRedact(t *testing.T) {
	g := &Generator{cfg: Config{APIKey: testKey}}
	err := g.redact(errors.New("header Authorization: Bearer " + testKey))
	if s := err.Error(); s != "header Authorization: Bearer [redacted]" {
		t.Errorf("redacted %q", s)
	}
	plain := errors.New("nothing secret")
	if g.redact(plain) != plain {
		t.Error("redact wrapped an error without the key")
	}
}
