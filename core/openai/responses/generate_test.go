package responses

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

func generate(t *testing.T, g *Generator, req core.GenerateRequest) core.Result {
	t.Helper()
	res, err := g.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate(%q): %v", req.Prompt, err)
	}
	return res
}

// TestGenerateThenRefine makes an image, then refines it by continuing the
// stored response: the refinement sends its message only, and the fake's
// image model edits the image the first response made.
func TestGenerateThenRefine(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	first := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", Flags: core.Flags{Quality: "medium"}, N: 1})

	r := srv.LastRequest(t)
	if r.Path != "/v1/responses" || r.ContentType != "application/json" || r.APIKey != testKey {
		t.Errorf("request %s %s key %q", r.Path, r.ContentType, r.APIKey)
	}
	if r.ConversationModel != DefaultModel || r.Model != DefaultImageModel || r.Action != "generate" || !r.Store || r.PreviousResponseID != "" {
		t.Errorf("generation: model %q image model %q action %q store %v previous %q", r.ConversationModel, r.Model, r.Action, r.Store, r.PreviousResponseID)
	}
	if r.Instructions != instructions || len(r.Messages) != 1 || r.Messages[0] != (openaitest.Message{Role: "user", Text: "a shop sign"}) {
		t.Errorf("generation sent instructions %q and messages %+v", r.Instructions, r.Messages)
	}
	if r.Quality != "medium" || r.Size != "auto" || r.Moderation != "low" || r.Stream {
		t.Errorf("tool quality %q size %q moderation %q stream %v", r.Quality, r.Size, r.Moderation, r.Stream)
	}
	if len(first.Images) != 1 || !bytes.Equal(first.Images[0].Data, r.Returned[0]) || first.Images[0].MIME != "image/png" {
		t.Fatalf("images %d, want the fake's, byte for byte", len(first.Images))
	}
	if !bytes.Contains(first.Images[0].Data, []byte(openaitest.ProvenanceMarker)) {
		t.Error("provenance block lost")
	}
	if d := first.Details; len(d) != 1 || d[0].ResponseID != r.ResponseID || d[0].RevisedPrompt != openaitest.RevisePrompt("a shop sign") {
		t.Errorf("details %+v, want response %s and the revised prompt", d, r.ResponseID)
	}
	if first.Text != "" || first.Model != DefaultImageModel || first.Attempts != 1 {
		t.Errorf("text %q model %q attempts %d", first.Text, first.Model, first.Attempts)
	}
	u := first.Usage
	if u.ConversationInputTokens == 0 || u.ConversationOutputTokens == 0 || u.OutputTokens != 1056 || u.InputTextTokens == 0 {
		t.Errorf("usage %+v: want both models' tokens (1056 image tokens for medium)", u)
	}
	p := DefaultPrices()
	conv, img := p[DefaultModel], p[DefaultImageModel]
	want := (float64(u.ConversationInputTokens)*conv.TextInput + float64(u.ConversationOutputTokens)*conv.Output +
		float64(u.InputTextTokens)*img.TextInput + float64(u.OutputTokens)*img.Output) / 1e6
	if math.Abs(first.CostUSD-want) > 1e-12 {
		t.Errorf("cost %v, want %v (conversation model and image model at their prices)", first.CostUSD, want)
	}

	base := first.Images[0]
	second := generate(t, g, core.GenerateRequest{Kind: core.KindRefine, Prompt: "make it red", History: []string{"a shop sign"},
		Conversation: []core.Exchange{{Prompt: "a shop sign"}}, Base: &base, PreviousResponseID: first.Details[0].ResponseID, N: 1})
	r = srv.LastRequest(t)
	if r.PreviousResponseID != first.Details[0].ResponseID || r.Action != "edit" {
		t.Errorf("refinement continues %q with action %q, want %q and edit", r.PreviousResponseID, r.Action, first.Details[0].ResponseID)
	}
	if len(r.Messages) != 1 || r.Messages[0].Text != "make it red" || len(r.Images) != 0 {
		t.Errorf("refinement sent %+v and %d images; want its message only", r.Messages, len(r.Images))
	}
	if !bytes.Equal(r.Edited, base.Data) || r.Context != 1 {
		t.Error("the image model did not edit the image the conversation made")
	}
	if len(second.Images) != 1 || second.Details[0].ResponseID != r.ResponseID {
		t.Errorf("refinement result %+v", second.Details)
	}
}

// TestAnswerInWords: a question gets words, no image, and names its
// response so the next turn continues from it; only the conversation model
// is paid for.
func TestAnswerInWords(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	first := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", N: 1})
	base := first.Images[0]
	res := generate(t, g, core.GenerateRequest{Kind: core.KindRefine, Prompt: "what does the sign say?", Base: &base,
		PreviousResponseID: first.Details[0].ResponseID, N: 2})
	r := srv.LastRequest(t)
	if len(srv.Requests()) != 2 {
		t.Errorf("%d requests: an answer in words is not asked for again for --n 2", len(srv.Requests()))
	}
	if res.Text != openaitest.AnswerTo("what does the sign say?") || len(res.Images) != 0 || res.ResponseID != r.ResponseID {
		t.Errorf("answer %q, %d images, response %q; want the fake's words and response %s", res.Text, len(res.Images), res.ResponseID, r.ResponseID)
	}
	if res.Model != DefaultModel || res.Usage.OutputTokens != 0 || res.Usage.ConversationOutputTokens == 0 || res.CostUSD <= 0 {
		t.Errorf("model %q usage %+v cost %v", res.Model, res.Usage, res.CostUSD)
	}
	p := DefaultPrices()[DefaultModel]
	if want := (float64(res.Usage.ConversationInputTokens)*p.TextInput + float64(res.Usage.ConversationOutputTokens)*p.Output) / 1e6; math.Abs(res.CostUSD-want) > 1e-12 {
		t.Errorf("cost %v, want %v", res.CostUSD, want)
	}
}

// TestWordsBesideImage: words the model says beside its image come back as
// Result.Text with the image.
func TestWordsBesideImage(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	srv.Say("Here it is, with the title in gold.")
	res := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a poster", N: 1})
	if res.Text != "Here it is, with the title in gold." || len(res.Images) != 1 || res.ResponseID != "" {
		t.Errorf("text %q images %d response %q", res.Text, len(res.Images), res.ResponseID)
	}
}

// TestFallbackWhenResponseGone: OpenAI no longer has the response to
// continue, so the request is sent again at once without it, with the
// thread's text (answers as the assistant's) and the image being refined;
// no error reaches the caller, and every request is reported as an attempt.
func TestFallbackWhenResponseGone(t *testing.T) {
	srv, g, w := newTestGenerator(t, nil)
	first := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", N: 1})
	srv.Forget()
	base := first.Images[0]
	logo := pngImage(t, 7)
	var a attempts
	res := generate(t, g, core.GenerateRequest{Kind: core.KindRefine, Prompt: "put our logo on it", Base: &base, Inputs: []core.Image{logo},
		PreviousResponseID: first.Details[0].ResponseID, N: 1, Attempt: a.report,
		Conversation: []core.Exchange{{Prompt: "a shop sign"}, {Prompt: "what does it say?", Answer: "OPEN"}}})

	reqs := srv.Requests()[1:]
	if len(reqs) != 2 || reqs[0].Status != 400 || reqs[0].Error != "previous_response_not_found" || reqs[0].PreviousResponseID != first.Details[0].ResponseID {
		t.Fatalf("requests %+v, want one refused for its gone previous response, then one without", reqs)
	}
	r := reqs[1]
	want := []openaitest.Message{{Role: "user", Text: "a shop sign"}, {Role: "user", Text: "what does it say?"}, {Role: "assistant", Text: "OPEN"},
		{Role: "user", Text: "put our logo on it", Images: 2}}
	if r.PreviousResponseID != "" || !slices.Equal(r.Messages, want) || r.Instructions != instructions+fallbackNote {
		t.Errorf("fallback continues %q with messages %+v", r.PreviousResponseID, r.Messages)
	}
	if len(r.Images) != 2 || !bytes.Equal(r.Images[0].Data, base.Data) || !bytes.Equal(r.Images[1].Data, logo.Data) || r.Images[0].ContentType != "image/png" {
		t.Error("the fallback did not carry the image being refined, then the attachment, byte for byte")
	}
	if !bytes.Equal(r.Edited, logo.Data) && !bytes.Equal(r.Edited, base.Data) {
		t.Error("the fake edited an image the request did not carry")
	}
	if len(res.Images) != 1 || res.Attempts != 2 || !slices.Equal(a.all(), []int{1, 2}) || len(w.all()) != 0 {
		t.Errorf("images %d attempts %d reported %v waits %v; want a result after 2 attempts and no wait", len(res.Images), res.Attempts, a.all(), w.all())
	}
	if res.Details[0].ResponseID != r.ResponseID {
		t.Errorf("the new image names response %q, want %q", res.Details[0].ResponseID, r.ResponseID)
	}
}

// TestStoreOff: with store off nothing is continued (the thread is sent
// every time) and no response is named.
func TestStoreOff(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Store = false })
	first := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", N: 1})
	r := srv.LastRequest(t)
	if r.Store || srv.Stored(r.ResponseID) || first.Details[0].ResponseID != "" {
		t.Errorf("store %v stored %v response named %q", r.Store, srv.Stored(r.ResponseID), first.Details[0].ResponseID)
	}
	base := first.Images[0]
	generate(t, g, core.GenerateRequest{Kind: core.KindRefine, Prompt: "make it red", Base: &base, PreviousResponseID: "resp_from_before",
		Conversation: []core.Exchange{{Prompt: "a shop sign"}}, N: 1})
	r = srv.LastRequest(t)
	if len(srv.Requests()) != 2 || r.PreviousResponseID != "" || len(r.Messages) != 2 || len(r.Images) != 1 {
		t.Errorf("%d requests; the refinement continued %q with %d messages and %d images", len(srv.Requests()), r.PreviousResponseID, len(r.Messages), len(r.Images))
	}
}

// TestStreamingPartials feeds partial images to Progress, byte for byte,
// and returns the final image.
func TestStreamingPartials(t *testing.T) {
	srv, g, _ := newTestGenerator(t, func(c *Config) { c.Stream, c.PartialImages = true, 3 })
	var partials []core.Partial
	res := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a red fox", N: 1,
		Progress: func(p core.Partial) { partials = append(partials, p) }})
	r := srv.LastRequest(t)
	if !r.Stream || r.PartialImages != 3 {
		t.Errorf("stream %v partial_images %d", r.Stream, r.PartialImages)
	}
	sent := srv.Partials()
	if len(partials) != 3 || len(sent) != 3 {
		t.Fatalf("got %d partials, fake sent %d", len(partials), len(sent))
	}
	for i, p := range partials {
		if p.Index != i || !bytes.Equal(p.Image.Data, sent[i]) || p.Image.MIME != "image/png" {
			t.Errorf("partial %d: index %d mime %q", i, p.Index, p.Image.MIME)
		}
	}
	if len(res.Images) != 1 || !bytes.Equal(res.Images[0].Data, r.Returned[0]) || res.Details[0].ResponseID != r.ResponseID || res.Usage.OutputTokens == 0 {
		t.Errorf("final image or its details differ from the fake's: %+v", res.Details)
	}
	// Words stream too.
	answer := generate(t, g, core.GenerateRequest{Kind: core.KindRefine, Prompt: "which fox is it?", Base: &res.Images[0], PreviousResponseID: r.ResponseID, N: 1})
	if answer.Text != openaitest.AnswerTo("which fox is it?") || !srv.LastRequest(t).Stream {
		t.Errorf("streamed answer %q", answer.Text)
	}
}

// TestFlagsMapToTheTool checks the image tool's parameters for Easel's
// flags, attachments as input images, several images as several requests
// from the same point, and high quality.
func TestFlagsMapToTheTool(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	res := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a logo", Model: "gpt-image-1.5",
		Flags: core.Flags{Size: "1536x1024", Quality: "low", Format: "webp", Transparent: true, Avoid: "gradients"}, N: 1})
	r := srv.LastRequest(t)
	if r.Model != "gpt-image-1.5" || r.Size != "1536x1024" || r.Quality != "low" || r.OutputFormat != "webp" || r.Background != "transparent" ||
		r.Action != "generate" || r.InputFidelity != "" || r.Prompt != "a logo\nAvoid: gradients" {
		t.Errorf("tool %+v prompt %q", r.Fields, r.Prompt)
	}
	if res.Images[0].MIME != "image/webp" {
		t.Errorf("MIME %q", res.Images[0].MIME)
	}

	base := pngImage(t, 1)
	mug := pngImage(t, 2)
	res = generate(t, g, core.GenerateRequest{Kind: core.KindVariations, Prompt: "on a mug", Model: "gpt-image-1.5", Flags: core.Flags{Size: "1024x1024"},
		Base: &base, Inputs: []core.Image{mug}, N: 2, PreviousResponseID: res.Details[0].ResponseID})
	reqs := srv.Requests()[1:]
	if len(reqs) != 2 || len(res.Images) != 2 {
		t.Fatalf("%d requests and %d images for --n 2, want 2 and 2", len(reqs), len(res.Images))
	}
	for i, r := range reqs {
		if r.PreviousResponseID != srv.Requests()[0].ResponseID || r.Action != "edit" || r.InputFidelity != "high" ||
			len(r.Images) != 1 || !bytes.Equal(r.Images[0].Data, mug.Data) {
			t.Errorf("variation %d: continues %q action %q fidelity %q with %d images", i+1, r.PreviousResponseID, r.Action, r.InputFidelity, len(r.Images))
		}
		if res.Details[i].ResponseID != r.ResponseID {
			t.Errorf("variation %d names response %q, want %q", i+1, res.Details[i].ResponseID, r.ResponseID)
		}
	}

	generate(t, g, core.GenerateRequest{Kind: core.KindHighQuality, Flags: core.Flags{Size: "2048x2048"}, Base: &base, PreviousResponseID: reqs[0].ResponseID, N: 1})
	r = srv.LastRequest(t)
	if r.Quality != "high" || r.Size != "2048x2048" || !strings.HasPrefix(r.Prompt, "Re-render this exact image") || r.InputFidelity != "" {
		t.Errorf("high quality: quality %q size %q prompt %q fidelity %q", r.Quality, r.Size, r.Prompt, r.InputFidelity)
	}
	// Regenerating a high-quality version: its turn had no prompt.
	generate(t, g, core.GenerateRequest{Kind: core.KindRegenerate, Flags: core.Flags{Quality: "high", Size: "2048x2048"}, Base: &base, PreviousResponseID: reqs[0].ResponseID, N: 1})
	if r := srv.LastRequest(t); !strings.HasPrefix(r.Prompt, "Re-render this exact image") {
		t.Errorf("regenerating a high-quality version sent %q", r.Prompt)
	}
}

// TestCheckRequest refuses what the image tool cannot do before anything
// is sent, with the Images API provider's messages, and masks.
func TestCheckRequest(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	mask := pngImage(t, 3)
	for name, req := range map[string]core.GenerateRequest{
		"retired model":      {Prompt: "x", Model: "gpt-image-1"},
		"seed":               {Prompt: "x", Flags: core.Flags{Seed: new(int64)}},
		"jpeg transparency":  {Prompt: "x", Flags: core.Flags{Format: "jpeg", Transparent: true}},
		"bad size":           {Prompt: "x", Flags: core.Flags{Size: "1000x1000"}},
		"mask with no image": {Prompt: "x", Mask: &mask},
		"empty":              {Prompt: " "},
	} {
		if _, err := g.Generate(context.Background(), req); core.KindOf(err) != core.Invalid {
			t.Errorf("%s: error %v, want Invalid", name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid requests", n)
	}
	if _, err := New(Config{APIKey: "k", Model: "gpt-image-2"}); err == nil {
		t.Error("an image model was accepted as the conversation model")
	}
	if _, err := New(Config{APIKey: "k", ImageModel: "dall-e-3"}); err == nil {
		t.Error("a retired image model was accepted")
	}
}

// TestEstimateCost: the estimate counts one conversation request and one
// image per image asked for, the thread read again, and errs above what
// the fake bills.
func TestEstimateCost(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	req := core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", Flags: core.Flags{Quality: "medium", Size: "1024x1024"}, N: 1}
	one := g.EstimateCost(req)
	res := generate(t, g, req)
	if one <= res.CostUSD {
		t.Errorf("estimate $%.5f is not above the cost billed, $%.5f", one, res.CostUSD)
	}
	req.N = 3
	if got := g.EstimateCost(req); math.Abs(got-3*one) > 1e-12 {
		t.Errorf("--n 3 estimated $%.5f, want 3 × $%.5f", got, one)
	}
	long := req
	long.N = 1
	long.Conversation = []core.Exchange{{Prompt: "a shop sign"}, {Prompt: "make it red"}, {Prompt: "what does it say?", Answer: "OPEN"}}
	if g.EstimateCost(long) <= one {
		t.Error("a longer thread is not estimated to cost more")
	}
	_ = srv
}

// TestRegionEditMask: a region edit sends the mask as the image tool's
// input_image_mask, continuing the response that made the image (which the
// fake checks the mask against), and again with the image in the
// fallback; the message names the region.
func TestRegionEditMask(t *testing.T) {
	srv, g, _ := newTestGenerator(t, nil)
	first := generate(t, g, core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a shop sign", N: 1})
	base := first.Images[0]
	w, h, err := core.ImageSize(base)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := core.ParseRegion("10,10,50,50")
	mask, err := core.RegionMask(r.Pixels(w, h), w, h)
	if err != nil {
		t.Fatal(err)
	}
	req := core.GenerateRequest{Kind: core.KindRefine, Prompt: "make the door red", Base: &base, Mask: &mask, N: 1,
		PreviousResponseID: first.Details[0].ResponseID, Flags: core.Flags{Region: "10,10,50,50"},
		Conversation: []core.Exchange{{Prompt: "a shop sign"}}}
	generate(t, g, req)
	rec := srv.LastRequest(t)
	if rec.Status != 200 || rec.Mask == nil || !bytes.Equal(rec.Mask.Data, mask.Data) || rec.Action != "edit" || !bytes.Equal(rec.Edited, base.Data) {
		t.Fatalf("status %d, mask sent %v, action %q, edited the base %v", rec.Status, rec.Mask != nil, rec.Action, bytes.Equal(rec.Edited, base.Data))
	}
	if !strings.Contains(rec.Prompt, "make the door red\nChange only the box 10,10,50,50 (x,y,w,h in percent) of the image") {
		t.Errorf("message %q does not name the region", rec.Prompt)
	}
	srv.Forget()
	generate(t, g, req)
	rec = srv.LastRequest(t)
	if rec.Status != 200 || rec.PreviousResponseID != "" || rec.Mask == nil || len(rec.Images) != 1 || !bytes.Equal(rec.Images[0].Data, base.Data) {
		t.Errorf("fallback: status %d, continues %q, mask %v, %d images", rec.Status, rec.PreviousResponseID, rec.Mask != nil, len(rec.Images))
	}
}
