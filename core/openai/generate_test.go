package openai

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
	"golang.org/x/image/webp"
)

func TestGenerate(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	req := core.GenerateRequest{
		Kind:   core.KindGenerate,
		Prompt: "a poster for our offsite",
		Flags:  core.Flags{Quality: "high", Avoid: "clowns"},
		N:      1,
	}
	res, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}

	r := srv.LastRequest(t)
	if r.Path != "/v1/images/generations" || r.ContentType != "application/json" {
		t.Errorf("request %s %s, want JSON to /v1/images/generations", r.Path, r.ContentType)
	}
	if r.APIKey != testKey {
		t.Errorf("bearer token %q, want the configured key", r.APIKey)
	}
	if r.Model != "gpt-image-2" || r.Prompt != req.FullPrompt() || r.Size != "auto" || r.Quality != "high" || r.N != 1 {
		t.Errorf("request model=%q prompt=%q size=%q quality=%q n=%d", r.Model, r.Prompt, r.Size, r.Quality, r.N)
	}
	if r.Moderation != "low" {
		t.Errorf("moderation = %q, want low (from Config)", r.Moderation)
	}
	for _, f := range []string{"output_format", "background", "stream", "partial_images", "input_fidelity"} {
		if _, ok := r.Fields[f]; ok {
			t.Errorf("%s sent, want it omitted: %v", f, r.Fields)
		}
	}

	if len(res.Images) != 1 {
		t.Fatalf("got %d images, want 1", len(res.Images))
	}
	im := res.Images[0]
	if !bytes.Equal(im.Data, srv.Images()[0]) {
		t.Error("image bytes differ from what OpenAI returned")
	}
	if !bytes.Contains(im.Data, []byte(openaitest.ProvenanceMarker)) {
		t.Error("provenance block lost")
	}
	if im.MIME != "image/png" {
		t.Errorf("MIME = %q, want image/png", im.MIME)
	}
	if res.Model != "gpt-image-2" || res.Attempts != 1 {
		t.Errorf("model %q attempts %d", res.Model, res.Attempts)
	}
	// The fake bills (len(prompt)+3)/4 text tokens and 4160 output tokens
	// for a high quality image.
	wantUsage := core.Usage{InputTextTokens: int64(len(req.FullPrompt())+3) / 4, OutputTokens: 4160}
	if res.Usage != wantUsage {
		t.Errorf("usage = %+v, want %+v", res.Usage, wantUsage)
	}
	p := DefaultPrices()["gpt-image-2"]
	want := (float64(wantUsage.InputTextTokens)*p.TextInput + float64(wantUsage.OutputTokens)*p.Output) / 1e6
	if math.Abs(res.CostUSD-want) > 1e-12 || res.CostUSD == 0 {
		t.Errorf("cost = %v, want %v", res.CostUSD, want)
	}
}

func TestGenerateSeveral(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindVariations, Prompt: "three foxes", N: 3,
		Progress: func(core.Partial) { t.Error("Progress called for a request that must not stream") },
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	r := srv.LastRequest(t)
	if r.N != 3 || r.Stream {
		t.Errorf("n=%d stream=%v, want 3 without streaming", r.N, r.Stream)
	}
	if len(res.Images) != 3 {
		t.Fatalf("got %d images", len(res.Images))
	}
	for i, im := range res.Images {
		if !bytes.Equal(im.Data, r.Returned[i]) {
			t.Errorf("image %d differs from what OpenAI returned", i)
		}
		for j := range i {
			if bytes.Equal(im.Data, res.Images[j].Data) {
				t.Errorf("images %d and %d are identical", j, i)
			}
		}
	}
	if want := int64(3 * 1056); res.Usage.OutputTokens != want {
		t.Errorf("output tokens %d, want %d (summed over images)", res.Usage.OutputTokens, want)
	}
}

func TestGenerateStreaming(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 3 })
	var partials []core.Partial
	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindGenerate, Prompt: "a red fox", N: 1,
		Progress: func(p core.Partial) { partials = append(partials, p) },
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	r := srv.LastRequest(t)
	if !r.Stream || r.PartialImages != 3 {
		t.Errorf("stream=%v partial_images=%d, want true 3", r.Stream, r.PartialImages)
	}
	sent := srv.Partials()
	if len(partials) != 3 || len(sent) != 3 {
		t.Fatalf("got %d partials, fake sent %d, want 3", len(partials), len(sent))
	}
	for i, p := range partials {
		if p.Index != i || !bytes.Equal(p.Image.Data, sent[i]) || p.Image.MIME != "image/png" {
			t.Errorf("partial %d: index %d mime %q, bytes equal %v", i, p.Index, p.Image.MIME, bytes.Equal(p.Image.Data, sent[i]))
		}
	}
	if len(res.Images) != 1 || !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
		t.Fatal("final image differs from the completed event's")
	}
	if res.Usage.OutputTokens != 1056 || res.Usage.InputTextTokens == 0 {
		t.Errorf("usage from completed event = %+v", res.Usage)
	}
	if res.CostUSD <= 0 {
		t.Errorf("cost = %v", res.CostUSD)
	}
}

func TestGenerateStreamingWithoutProgress(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 1 })
	res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if !srv.LastRequest(t).Stream || !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
		t.Error("streamed result differs")
	}
}

func TestEditSingleImage(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	first, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a mug", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	base := first.Images[0]
	req := core.GenerateRequest{
		Kind: core.KindRefine, Prompt: "make it gold", History: []string{"a mug"}, N: 1,
		Base: &base,
	}
	res, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("refine: %v", err)
	}
	r := srv.LastRequest(t)
	if r.Path != "/v1/images/edits" || r.ContentType != "multipart/form-data" {
		t.Fatalf("request %s %s, want multipart edit", r.Path, r.ContentType)
	}
	if r.ImageField != "image" || len(r.Images) != 1 {
		t.Fatalf("image field %q with %d parts, want one \"image\" part", r.ImageField, len(r.Images))
	}
	pt := r.Images[0]
	if !bytes.Equal(pt.Data, base.Data) {
		t.Error("uploaded image differs from the earlier result")
	}
	if pt.Filename != "base.png" || pt.ContentType != "image/png" {
		t.Errorf("part filename %q content type %q", pt.Filename, pt.ContentType)
	}
	if r.Prompt != req.FullPrompt() || r.Model != "gpt-image-2" || r.Size != "auto" {
		t.Errorf("prompt %q model %q size %q", r.Prompt, r.Model, r.Size)
	}
	if _, ok := r.Fields["input_fidelity"]; ok {
		t.Error("input_fidelity sent to gpt-image-2")
	}
	if _, ok := r.Fields["moderation"]; ok {
		t.Error("moderation sent to the edits endpoint, which has no such parameter")
	}
	if r.Mask != nil {
		t.Error("mask sent")
	}
	if !bytes.Equal(res.Images[0].Data, r.Returned[0]) {
		t.Error("edit result differs from what OpenAI returned")
	}
	if res.Usage.InputImageTokens != 388 {
		t.Errorf("image input tokens %d, want 388", res.Usage.InputImageTokens)
	}
}

func TestEditSeveralImagesAndMask(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Model = "gpt-image-1.5" })
	base := pngImage(t, 1)
	logo := pngImage(t, 2)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, testImage(3), nil); err != nil {
		t.Fatal(err)
	}
	photo := core.Image{Data: jpg.Bytes(), MIME: "image/jpeg", Name: "photo.jpg"}
	mask, err := core.RegionMask(image.Rect(0, 0, 4, 4), 8, 8) // base is 8x8
	if err != nil {
		t.Fatal(err)
	}
	mask.MIME = "" // sniffed

	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindRefine, Prompt: "put the logo on the mug", History: []string{"a mug"}, N: 2,
		Base: &base, Inputs: []core.Image{logo, photo}, Mask: &mask,
		Flags: core.Flags{Size: "1536x1024", Format: "png", Transparent: true},
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	r := srv.LastRequest(t)
	if r.ImageField != "image[]" || len(r.Images) != 3 {
		t.Fatalf("image field %q with %d parts, want 3 \"image[]\" parts", r.ImageField, len(r.Images))
	}
	want := []struct {
		im       core.Image
		name, ct string
	}{{base, "base.png", "image/png"}, {logo, "input-1.png", "image/png"}, {photo, "input-2.jpg", "image/jpeg"}}
	for i, w := range want {
		pt := r.Images[i]
		if !bytes.Equal(pt.Data, w.im.Data) || pt.Filename != w.name || pt.ContentType != w.ct {
			t.Errorf("part %d: %q %q equal=%v, want %q %q", i, pt.Filename, pt.ContentType, bytes.Equal(pt.Data, w.im.Data), w.name, w.ct)
		}
	}
	if r.Mask == nil || !bytes.Equal(r.Mask.Data, mask.Data) || r.Mask.Filename != "mask.png" || r.Mask.ContentType != "image/png" {
		t.Errorf("mask part = %+v", r.Mask)
	}
	if r.InputFidelity != "high" {
		t.Errorf("input_fidelity = %q, want high for gpt-image-1.5 refinements", r.InputFidelity)
	}
	if r.N != 2 || r.Size != "1536x1024" || r.Background != "transparent" || r.OutputFormat != "png" {
		t.Errorf("n=%d size=%q background=%q format=%q", r.N, r.Size, r.Background, r.OutputFormat)
	}
	if len(res.Images) != 2 || res.Usage.InputImageTokens != 2*3*388 {
		t.Errorf("%d images, usage %+v", len(res.Images), res.Usage)
	}
}

func TestGenerateWithAttachmentIsEdit(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	logo := pngImage(t, 9)
	logo.Name = "logo.png"
	if _, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindGenerate, Prompt: "put this logo on a mug", N: 1, Inputs: []core.Image{logo},
	}); err != nil {
		t.Fatal(err)
	}
	r := srv.LastRequest(t)
	if r.Path != "/v1/images/edits" || r.ImageField != "image" || r.Images[0].Filename != "input-1.png" {
		t.Errorf("path %s field %q parts %d", r.Path, r.ImageField, len(r.Images))
	}
}

func TestEditStreaming(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 2 })
	base := pngImage(t, 5)
	var partials []core.Partial
	res, err := g.Generate(context.Background(), core.GenerateRequest{
		Kind: core.KindHighQuality, History: []string{"a fox"}, N: 1, Base: &base,
		Progress: func(p core.Partial) { partials = append(partials, p) },
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	r := srv.LastRequest(t)
	if r.Path != "/v1/images/edits" || !r.Stream || r.PartialImages != 2 || r.Quality != "high" {
		t.Errorf("path %s stream %v partials %d quality %q", r.Path, r.Stream, r.PartialImages, r.Quality)
	}
	if len(partials) != 2 || !bytes.Equal(partials[1].Image.Data, srv.Partials()[1]) {
		t.Errorf("got %d partials", len(partials))
	}
	if !bytes.Equal(res.Images[0].Data, srv.Images()[0]) {
		t.Error("final image differs")
	}
}

func TestOutputFormats(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	for _, format := range []string{"jpeg", "webp"} {
		res, err := g.Generate(context.Background(), core.GenerateRequest{
			Kind: core.KindGenerate, Prompt: "a fox", N: 1, Flags: core.Flags{Format: format},
		})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		im := res.Images[0]
		if im.MIME != core.MIMEForFormat(format) || srv.LastRequest(t).OutputFormat != format {
			t.Errorf("%s: MIME %q", format, im.MIME)
		}
		if !bytes.Contains(im.Data, []byte(openaitest.ProvenanceMarker)) {
			t.Errorf("%s: provenance block lost", format)
		}
		var decodeErr error
		if format == "jpeg" {
			_, decodeErr = jpeg.Decode(bytes.NewReader(im.Data))
		} else {
			_, decodeErr = webp.Decode(bytes.NewReader(im.Data))
		}
		if decodeErr != nil {
			t.Errorf("%s: fake image does not decode: %v", format, decodeErr)
		}
	}
}

func TestSizes(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	for _, tc := range []struct {
		model string
		flags core.Flags
		want  string
	}{
		{"gpt-image-2", core.Flags{Size: "1536x864"}, "1536x864"},
		{"gpt-image-2", core.Flags{Aspect: "16:9"}, "1536x864"},
		{"gpt-image-2-2026-04-21", core.Flags{Size: "3840x2160"}, "3840x2160"},
		{"gpt-image-1.5", core.Flags{Size: "1920x1080"}, "1536x1024"},
		{"gpt-image-1-mini", core.Flags{Aspect: "9:16"}, "1024x1536"},
		{"chatgpt-image-latest", core.Flags{Size: "800x800"}, "1024x1024"},
		{"gpt-image-1.5", core.Flags{}, "auto"},
	} {
		_, err := g.Generate(context.Background(), core.GenerateRequest{
			Kind: core.KindGenerate, Prompt: "a fox", N: 1, Model: tc.model, Flags: tc.flags,
		})
		if err != nil {
			t.Errorf("%s %+v: %v", tc.model, tc.flags, err)
			continue
		}
		if r := srv.LastRequest(t); r.Size != tc.want || r.Model != tc.model {
			t.Errorf("%s %+v: sent %s size %q, want %q", tc.model, tc.flags, r.Model, r.Size, tc.want)
		}
	}
}

func TestModelWithoutPrice(t *testing.T) {
	_, g, _ := newTestGenerator(t, func(c *Config) { c.Prices = map[string]Price{} })
	res, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a fox", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.CostUSD != 0 || res.Usage.OutputTokens == 0 {
		t.Errorf("cost %v usage %+v, want 0 cost with usage", res.CostUSD, res.Usage)
	}
}

// TestRegionEditMask: a region edit's mask goes to the edits endpoint as
// the "mask" part, byte for byte, and the fake accepts it (a PNG with an
// alpha channel of the base image's size); the prompt names the region.
func TestRegionEditMask(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	first, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a poster", N: 1})
	if err != nil {
		t.Fatal(err)
	}
	base := first.Images[0]
	w, h, err := core.ImageSize(base)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := core.ParseRegion("top-left")
	mask, err := core.RegionMask(r.Pixels(w, h), w, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Generate(context.Background(), core.GenerateRequest{Kind: core.KindRefine, Prompt: "a gold title", History: []string{"a poster"},
		Base: &base, Mask: &mask, N: 1, Flags: core.Flags{Region: "top-left"}}); err != nil {
		t.Fatal(err)
	}
	rec := srv.LastRequest(t)
	if rec.Path != "/v1/images/edits" || rec.Mask == nil || !bytes.Equal(rec.Mask.Data, mask.Data) || rec.Status != 200 {
		t.Fatalf("%s %d, mask sent %v", rec.Path, rec.Status, rec.Mask != nil)
	}
	if !bytes.Contains([]byte(rec.Prompt), []byte("Change only the top-left part of the image")) {
		t.Errorf("the prompt does not name the region: %q", rec.Prompt)
	}
}
