package responses

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

// TestErrorClasses drives every error class of the Images API provider
// through this one, streaming and not: each ends with the same kind and
// message, after the same number of requests (refusals, quota and a bad key
// are never retried; rate limits, outages, resets, truncated answers and
// errors mid-answer are, and a single one is retried away).
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		faults   []openaitest.Fault
		kind     core.ErrorKind // "" for success
		msg      string
		requests int
	}{
		{"refused in the answer", []openaitest.Fault{openaitest.ModerationBlocked()}, core.Refused, wire.MsgRefused, 1},
		{"refused with a 400", []openaitest.Fault{{Kind: openaitest.FaultCustom, Status: 400, Type: "invalid_request_error", Code: "moderation_blocked", Message: "Your request was rejected by the safety system."}}, core.Refused, wire.MsgRefused, 1},
		{"input image against policy", []openaitest.Fault{openaitest.ResponseFailed("image_content_policy_violation")}, core.Refused, wire.MsgRefused, 1},
		{"quota", []openaitest.Fault{openaitest.InsufficientQuota()}, core.Quota, wire.MsgQuota, 1},
		{"bad key", []openaitest.Fault{openaitest.Unauthorized()}, core.Unavailable, wire.MsgBadKey, 1},
		{"rate limit retried away", []openaitest.Fault{openaitest.RateLimited(time.Millisecond)}, "", "", 2},
		{"rate limit outlasting retries", repeat(openaitest.RateLimited(time.Millisecond), 4), core.RateLimited, wire.MsgRateLimited, 4},
		{"outage retried away", []openaitest.Fault{openaitest.ServerError(503)}, "", "", 2},
		{"outage", repeat(openaitest.ServerError(500), 4), core.Unavailable, "OpenAI is having trouble (HTTP 500); try again later.", 4},
		{"reset", repeat(openaitest.ConnectionReset(), 4), core.Unavailable, wire.MsgConnection, 4},
		{"truncated", repeat(openaitest.Truncated(), 4), core.Unavailable, wire.MsgTruncated, 4},
		{"response failed", repeat(openaitest.ResponseFailed(""), 4), core.Unavailable, wire.MsgStreamError, 4},
		{"response failed, rate limited", repeat(openaitest.ResponseFailed("rate_limit_exceeded"), 4), core.RateLimited, wire.MsgRateLimited, 4},
	} {
		for _, stream := range []bool{false, true} {
			name := tc.name
			if stream {
				name += ", streaming"
			}
			t.Run(name, func(t *testing.T) {
				srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = stream, 1 })
				srv.Fail(tc.faults...)
				res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
				if tc.kind == "" {
					if err != nil || len(res.Images) != 1 {
						t.Fatalf("error %v, %d images; want the fault retried away", err, len(res.Images))
					}
				} else if ce := wantKind(t, err, tc.kind); ce.Message != tc.msg {
					t.Errorf("message %q, want %q", ce.Message, tc.msg)
				}
				if n := len(srv.Requests()); n != tc.requests || res.Attempts != tc.requests {
					t.Errorf("%d requests, %d attempts; want %d", n, res.Attempts, tc.requests)
				}
			})
		}
	}
}

// TestErrorMidStream: an error event after the first partial image is
// retried, and the partials of every attempt reach Progress in order.
func TestErrorMidStream(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	srv.Fail(openaitest.StreamError())
	var indexes []int
	res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1,
		Progress: func(p core.Partial) { indexes = append(indexes, p.Index) }})
	if err != nil || res.Attempts != 2 {
		t.Fatalf("error %v attempts %d, want success on the second", err, res.Attempts)
	}
	if len(indexes) != 3 || indexes[2] != 2 {
		t.Errorf("partial indexes %v, want 0, 1, 2 across attempts", indexes)
	}
	srv.Fail(repeat(openaitest.StreamError(), 4)...)
	_, err = g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	if ce := wantKind(t, err, core.Unavailable); ce.Message != wire.MsgStreamError {
		t.Errorf("message %q", ce.Message)
	}
}

// TestTimeout: an answer that never comes fails each attempt after the
// attempt timeout, with the Images API provider's message.
func TestTimeout(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Timeout, c.MaxRetries = 50*time.Millisecond, 1 })
	srv.Fail(openaitest.Stall(), openaitest.StallBody())
	res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	ce := wantKind(t, err, core.Unavailable)
	if !strings.HasPrefix(ce.Message, "OpenAI did not answer in time (timed out after 50ms)") || res.Attempts != 2 {
		t.Errorf("message %q attempts %d", ce.Message, res.Attempts)
	}
}

// TestAttemptRefused: when the engine cannot record an attempt, nothing is
// sent and its error comes back unchanged.
func TestAttemptRefused(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	stop := errors.New("store full")
	_, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1,
		Attempt: func(int) error { return stop }})
	if !errors.Is(err, stop) || srv.Arrivals() != 0 {
		t.Errorf("error %v, %d requests", err, srv.Arrivals())
	}
}

func repeat(f openaitest.Fault, n int) []openaitest.Fault {
	fs := make([]openaitest.Fault, n)
	for i := range fs {
		fs[i] = f
	}
	return fs
}

// TestLaterImageFails: asked for two images, the second request refused,
// Generate returns the first image rather than losing what was paid for.
func TestLaterImageFails(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	srv.OnArrive = func(n int) {
		if n == 2 {
			srv.Fail(openaitest.InsufficientQuota())
		}
	}
	res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindVariations, Prompt: "a fox", N: 2})
	if err != nil || len(res.Images) != 1 || res.Attempts != 2 || len(res.Details) != 1 {
		t.Errorf("error %v, %d images after %d attempts; want the first image", err, len(res.Images), res.Attempts)
	}
}
