package responses

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/internal/wire"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

// TestDescribe sends the image and the ask, asks for a JSON answer that
// is not stored and calls no tool, reads the fake's suggestions and
// prices the conversation model's tokens.
func TestDescribe(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	img := pngImage(t, 7)
	d, err := g.Describe(context.Background(), img)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !slices.Equal(d.Suggestions, openaitest.Suggestions) {
		t.Errorf("suggestions %q, want %q", d.Suggestions, openaitest.Suggestions)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.TextFormat != "json_schema" || r.SchemaName != "prompt_suggestions" || r.Store || r.Model != "" ||
		len(r.Images) != 1 || string(r.Images[0].Data) != string(img.Data) || !strings.Contains(r.Prompt, "up to 4") {
		t.Errorf("request: format %q %q, store %v, tool model %q, %d images, prompt %q", r.TextFormat, r.SchemaName, r.Store, r.Model, len(r.Images), r.Prompt)
	}
	if d.Usage.ConversationInputTokens == 0 || d.Usage.ConversationOutputTokens == 0 || d.CostUSD <= 0 || d.Model != g.Model() {
		t.Errorf("usage %+v, cost %v, model %q", d.Usage, d.CostUSD, d.Model)
	}
	if est := g.EstimateDescribe(); est <= 0 {
		t.Errorf("EstimateDescribe = %v, want above 0", est)
	}
}

// TestDescribeErrors: a describe fails with the classes and messages of
// Generate.
func TestDescribeErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults []openaitest.Fault
		kind   core.ErrorKind
		msg    string
	}{
		{"refused", []openaitest.Fault{openaitest.ModerationBlocked()}, core.Refused, wire.MsgRefused},
		{"quota", []openaitest.Fault{openaitest.InsufficientQuota()}, core.Quota, wire.MsgQuota},
		{"rate limit", repeat(openaitest.RateLimited(time.Millisecond), 4), core.RateLimited, wire.MsgRateLimited},
		{"outage", repeat(openaitest.ServerError(500), 4), core.Unavailable, "OpenAI is having trouble (HTTP 500); try again later."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, g, _ := newTestGenerator(t, nil)
			srv.Fail(tc.faults...)
			_, err := g.Describe(context.Background(), pngImage(t, 1))
			if ce := wantKind(t, err, tc.kind); ce.Message != tc.msg {
				t.Errorf("message %q, want %q", ce.Message, tc.msg)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		srv, g, _ := newTestGenerator(t, func(c *Config) { c.Timeout, c.MaxRetries = 50*time.Millisecond, 0 })
		srv.Fail(openaitest.Stall())
		_, err := g.Describe(context.Background(), pngImage(t, 1))
		if ce := wantKind(t, err, core.Unavailable); !strings.HasPrefix(ce.Message, "OpenAI did not answer in time") {
			t.Errorf("message %q", ce.Message)
		}
	})
}
