package wire

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"
)

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
			d := backoff(retry, base, limit, RandInt64N)
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
		d, ok := retryWait(1, time.Second, true, base, limit, RandInt64N)
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
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleep = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("sleep ignored cancellation")
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Error(err)
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
		{"response.failed", "image_content_policy_violation", "", true},
		{"response.incomplete", "content_filter", "", true},
		{"response.failed", "server_error", "", false},
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
		se, ok := ParseStreamError([]byte(tc.data))
		if ok != tc.ok || (ok && se.Code != tc.code) {
			t.Errorf("ParseStreamError(%s) = %+v, %v", tc.data, se, ok)
		}
	}
}

func TestRedact(t *testing.T) {
	const testKey = "sk-test-Zm9vYmFyYmF6cXV4c2VjcmV0a2V5"
	g := Classifier{APIKey: testKey}
	err := g.Redact(errors.New("header Authorization: Bearer " + testKey))
	if s := err.Error(); s != "header Authorization: Bearer [redacted]" {
		t.Errorf("redacted %q", s)
	}
	plain := errors.New("nothing secret")
	if g.Redact(plain) != plain {
		t.Error("redact wrapped an error without the key")
	}
}
