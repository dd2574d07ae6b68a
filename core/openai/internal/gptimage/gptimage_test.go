package gptimage

import (
	"math"
	"testing"

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
		w, h, _ := ParseSize(got)
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
		if got := IsGPTImage2(model); got != want {
			t.Errorf("IsGPTImage2(%q) = %v", model, got)
		}
	}
	for model, retired := range map[string]bool{
		"gpt-image-1": true, "gpt-image-1-2025-04-15": true, "dall-e-2": true, "dall-e-3": true,
		"gpt-image-1-mini": false, "gpt-image-1.5": false, "gpt-image-2": false,
	} {
		if got := Retired(model) != ""; got != retired {
			t.Errorf("Retired(%q) retired=%v", model, got)
		}
	}
	if !SupportsInputFidelity("gpt-image-1.5") || SupportsInputFidelity("gpt-image-2") || SupportsInputFidelity("gpt-image-1-mini") {
		t.Error("input fidelity support wrong")
	}
	if Undated("gpt-image-2-2026-04-21") != "gpt-image-2" || Undated("gpt-image-1-mini") != "gpt-image-1-mini" {
		t.Error("Undated wrong")
	}
}

func TestParseSize(t *testing.T) {
	for s, ok := range map[string]bool{
		"1024x1024": true, "16X16": true, " 32x48 ": true,
		"0x10": false, "-1x10": false, "+1x10": false, "10x": false, "x10": false, "10*10": false, "": false,
	} {
		if _, _, got := ParseSize(s); got != ok {
			t.Errorf("ParseSize(%q) ok=%v", s, got)
		}
	}
}

func TestCost(t *testing.T) {
	p := Price{TextInput: 5, ImageInput: 8, Output: 30}
	u := core.Usage{InputTextTokens: 1000, InputImageTokens: 2000, OutputTokens: 10000}
	want := (1000*5 + 2000*8 + 10000*30) / 1e6
	if got := p.Cost(u); math.Abs(got-want) > 1e-12 {
		t.Errorf("Cost = %v, want %v", got, want)
	}
	prices := map[string]Price{"gpt-image-2": p}
	if got, ok := PriceOf(prices, "gpt-image-2-2026-04-21"); !ok || got != p {
		t.Errorf("snapshot price = %v, %v; want the Undated model's %v", got, ok, p)
	}
	if _, ok := PriceOf(prices, "gpt-image-1.5"); ok {
		t.Error("an unpriced model has a price")
	}
}

func TestUsageOf(t *testing.T) {
	if u := UsageOf(100, 0, 0, 50); u.InputTextTokens != 100 || u.OutputTokens != 50 {
		t.Errorf("no breakdown: %+v", u)
	}
	if u := UsageOf(100, 30, 70, 50); u.InputTextTokens != 30 || u.InputImageTokens != 70 {
		t.Errorf("breakdown: %+v", u)
	}
}

func TestOutputMIME(t *testing.T) {
	jpg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	if got := OutputMIME("jpeg", "", jpg); got != "image/jpeg" {
		t.Error(got)
	}
	if got := OutputMIME("", "png", jpg); got != "image/jpeg" {
		t.Errorf("sniffing: %s", got)
	}
	if got := OutputMIME("", "webp", []byte("???")); got != "image/webp" {
		t.Errorf("fallback to requested: %s", got)
	}
}
