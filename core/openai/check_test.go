package openai

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for success
	}{
		{"ok", Config{APIKey: "k"}, ""},
		{"no key", Config{}, "API key is required"},
		{"blank key", Config{APIKey: "  "}, "API key is required"},
		{"gpt-image-1", Config{APIKey: "k", Model: "gpt-image-1"}, "was shut down on 2026-10-23; use gpt-image-2 or gpt-image-1.5"},
		{"gpt-image-1 snapshot", Config{APIKey: "k", Model: "gpt-image-1-2025-04-15"}, "was shut down on 2026-10-23"},
		{"dall-e-3", Config{APIKey: "k", Model: "dall-e-3"}, "DALL·E models are retired; use gpt-image-2"},
		{"dall-e-2", Config{APIKey: "k", Model: "DALL-E-2"}, "DALL·E models are retired"},
		{"mini is fine", Config{APIKey: "k", Model: "gpt-image-1-mini"}, ""},
		{"partials", Config{APIKey: "k", PartialImages: 4}, "partial images"},
		{"moderation", Config{APIKey: "k", Moderation: "off"}, "moderation"},
		{"retries", Config{APIKey: "k", MaxRetries: -1}, "max retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if tc.cfg.Model == "" && g.Model() != DefaultModel {
					t.Errorf("default model %q", g.Model())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.APIKey = "k"
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if g.cfg.Model != "gpt-image-2" || g.cfg.MaxRetries != DefaultMaxRetries || !g.cfg.Stream {
		t.Errorf("defaults: %+v", g.cfg)
	}
	for _, m := range []string{"gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"} {
		if p, ok := cfg.Prices[m]; !ok || p.Output <= 0 {
			t.Errorf("no default price for %s", m)
		}
	}
}

func TestCheckRequest(t *testing.T) {
	g, err := New(Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	seed := int64(42)
	png := core.Image{Data: []byte("\x89PNG\r\n\x1a\n0000000000000000"), MIME: "image/png"}
	gif := core.Image{Data: []byte("GIF89a000000"), Name: "cat.gif"}
	jpg := core.Image{Data: []byte("\xff\xd8\xff\xe0000000000000"), MIME: "image/jpeg"}
	many := make([]core.Image, 16)
	for i := range many {
		many[i] = png
	}
	for _, tc := range []struct {
		name string
		req  core.GenerateRequest
		want string // substring of the Invalid message; "" for nil
	}{
		{"plain", core.GenerateRequest{}, ""},
		{"n 0 means 1", core.GenerateRequest{N: 0}, ""},
		{"n 10", core.GenerateRequest{N: 10}, ""},
		{"n 11", core.GenerateRequest{N: 11}, "--n must be between 1 and 10"},
		{"n negative", core.GenerateRequest{N: -1}, "--n must be between 1 and 10"},
		{"retired override", core.GenerateRequest{Model: "gpt-image-1"}, "--model gpt-image-1 was shut down on 2026-10-23; use gpt-image-2 or gpt-image-1.5."},
		{"retired flag", core.GenerateRequest{Flags: core.Flags{Model: "dall-e-3"}}, "--model dall-e-3: DALL·E models are retired; use gpt-image-2."},
		{"seed", core.GenerateRequest{Flags: core.Flags{Seed: &seed}}, "--seed is not supported"},
		{"transparent jpeg", core.GenerateRequest{Flags: core.Flags{Transparent: true, Format: "jpeg"}}, "--transparent needs --format png or webp"},
		{"transparent webp", core.GenerateRequest{Flags: core.Flags{Transparent: true, Format: "webp"}}, ""},
		{"bad quality", core.GenerateRequest{Flags: core.Flags{Quality: "ultra"}}, "--quality"},
		{"bad format", core.GenerateRequest{Flags: core.Flags{Format: "gif"}}, "--format"},
		{"size ok", core.GenerateRequest{Flags: core.Flags{Size: "1536x864"}}, ""},
		{"size auto", core.GenerateRequest{Flags: core.Flags{Size: "auto"}}, ""},
		{"size max", core.GenerateRequest{Flags: core.Flags{Size: "2160x3840"}}, ""},
		{"size not /16", core.GenerateRequest{Flags: core.Flags{Size: "1000x1000"}}, "--size 1000x1000 does not work with gpt-image-2: width and height must both be divisible by 16 (try 1008x1008)"},
		{"size aspect", core.GenerateRequest{Flags: core.Flags{Size: "3200x1024"}}, "aspect ratio must be between 1:3 and 3:1"},
		{"size 3:1 ok", core.GenerateRequest{Flags: core.Flags{Size: "3072x1024"}}, ""},
		{"size pixels", core.GenerateRequest{Flags: core.Flags{Size: "3840x2176"}}, "3840x2160"},
		{"size edge", core.GenerateRequest{Flags: core.Flags{Size: "4000x1600"}}, "3840 pixels"},
		{"size garbage", core.GenerateRequest{Flags: core.Flags{Size: "big"}}, "--size must be WIDTHxHEIGHT"},
		{"size snapped for 1.5", core.GenerateRequest{Model: "gpt-image-1.5", Flags: core.Flags{Size: "1000x1000"}}, ""},
		{"dated snapshot is gpt-image-2", core.GenerateRequest{Model: "gpt-image-2-2026-04-21", Flags: core.Flags{Size: "1000x1000"}}, "divisible by 16"},
		{"2.5 family", core.GenerateRequest{Model: "gpt-image-2.5-flare", Flags: core.Flags{Size: "1000x1000"}}, "divisible by 16"},
		{"aspect ok", core.GenerateRequest{Flags: core.Flags{Aspect: "16:9"}}, ""},
		{"aspect bad", core.GenerateRequest{Flags: core.Flags{Aspect: "wide"}}, "--ar must look like 16:9"},
		{"aspect too wide", core.GenerateRequest{Flags: core.Flags{Aspect: "4:1"}}, "between 1:3 and 3:1"},
		{"aspect snapped for mini", core.GenerateRequest{Model: "gpt-image-1-mini", Flags: core.Flags{Aspect: "4:1"}}, ""},
		{"empty prompt", core.GenerateRequest{Prompt: " "}, "prompt is empty"},
		{"long prompt", core.GenerateRequest{Prompt: strings.Repeat("é", 32001)}, "too long"},
		{"gif attachment", core.GenerateRequest{Inputs: []core.Image{gif}}, "Attachment 1 (cat.gif) is a GIF image; OpenAI takes PNG, JPEG or WebP images."},
		{"empty attachment", core.GenerateRequest{Inputs: []core.Image{{}}}, "Attachment 1 is empty"},
		{"jpeg base", core.GenerateRequest{Base: &jpg, History: []string{"x"}}, ""},
		{"16 images", core.GenerateRequest{Base: &png, History: []string{"x"}, Inputs: many[:15]}, ""},
		{"17 images", core.GenerateRequest{Base: &png, History: []string{"x"}, Inputs: many}, "at most 16 input images"},
		{"mask without image", core.GenerateRequest{Mask: &png}, "A mask needs an image"},
		{"jpeg mask", core.GenerateRequest{Base: &png, History: []string{"x"}, Mask: &jpg}, "The mask must be a PNG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Prompt == "" && len(req.History) == 0 {
				req.Prompt = "a fox"
			}
			err := g.CheckRequest(req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckRequest: %v", err)
				}
				return
			}
			ce := wantKind(t, err, core.Invalid)
			if !strings.Contains(ce.Message, tc.want) {
				t.Errorf("message %q, want it to contain %q", ce.Message, tc.want)
			}
		})
	}
}

// TestGenerateChecksFirst checks that an invalid request never reaches OpenAI.
func TestGenerateChecksFirst(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	for _, model := range []string{"gpt-image-1", "dall-e-3", "dall-e-2"} {
		res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1, Model: model})
		wantKind(t, err, core.Invalid)
		if res.Attempts != 0 {
			t.Errorf("%s: attempts %d", model, res.Attempts)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("fake saw %d requests, want none", n)
	}
}
