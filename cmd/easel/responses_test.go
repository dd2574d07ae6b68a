package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/openaitest"
)

// TestChatResponses is a 4-turn console session with openai-responses
// against the loopback fake: generate, refine, a question answered in
// words, a branch from v1. Each turn sends exactly one request, continuing
// the right response (the refinement v1's, the question v2's, the branch
// v1's again); the answer is printed and recorded with no version; the
// stored images are the bytes the fake returned; sessions show prints the
// answer in the tree.
func TestChatResponses(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Key = "sk-test-responses-0123456789"
	environ := map[string]string{"OPENAI_API_KEY": srv.Key, "OPENAI_BASE_URL": srv.URL()}
	dir := t.TempDir()
	script := "a shop sign --quality low\nmake it red\nwhat does the sign say?\n@v1 make it night\n"
	out, errOut, code := easel(t, script, environ, "chat", "--provider", "openai-responses", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (one per turn):\n%s", len(reqs), out)
	}
	id := func(i int) string { return reqs[i].ResponseID }
	for i, want := range []struct {
		prompt, previous, action string
		edited                   []byte // the image the image model edited
	}{
		{"a shop sign", "", "generate", nil},
		{"make it red", id(0), "edit", reqs[0].Returned[0]},
		{"what does the sign say?", id(1), "edit", nil},
		{"make it night", id(0), "edit", reqs[0].Returned[0]},
	} {
		r := reqs[i]
		if r.Path != "/v1/responses" || r.Status != 200 || r.PreviousResponseID != want.previous || r.Action != want.action ||
			r.Prompt != want.prompt || len(r.Messages) != 1 || len(r.Images) != 0 {
			t.Errorf("turn %d: %s %d, continues %q (want %q), action %q, %d messages ending %q, %d images", i+1, r.Path, r.Status,
				r.PreviousResponseID, want.previous, r.Action, len(r.Messages), r.Prompt, len(r.Images))
		}
		if !bytes.Equal(r.Edited, want.edited) {
			t.Errorf("turn %d edited another image than the one it refines", i+1)
		}
		if r.ConversationModel != "gpt-5.5" || r.Model != "gpt-image-2" || r.Quality != "low" || !r.Store {
			t.Errorf("turn %d: models %q and %q, quality %q, store %v", i+1, r.ConversationModel, r.Model, r.Quality, r.Store)
		}
	}
	if reqs[2].Text != openaitest.AnswerTo("what does the sign say?") || len(reqs[2].Returned) != 0 {
		t.Errorf("the question got %q and %d images", reqs[2].Text, len(reqs[2].Returned))
	}
	if !strings.Contains(out, "💬 "+openaitest.AnswerTo("what does the sign say?")) {
		t.Errorf("the answer is not printed:\n%s", out)
	}
	for _, want := range []string{"✅ v1 · “a shop sign”", "✅ v2 (refine of v1) · “make it red”", "✅ v3 (branch of v1) · “make it night”",
		"drawn as “make it night (as the fake understood it)”", "openai-responses gpt-5.5 with gpt-image-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	paths := imagePaths(out)
	returned := [][]byte{reqs[0].Returned[0], reqs[1].Returned[0], reqs[3].Returned[0]}
	if len(paths) != 3 {
		t.Fatalf("printed %d paths, want 3:\n%s", len(paths), out)
	}
	for i, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, returned[i]) || !bytes.Contains(got, []byte(openaitest.ProvenanceMarker)) {
			t.Errorf("stored image %d differs from the bytes the fake returned", i+1)
		}
	}
	if strings.Contains(out+errOut, srv.Key) {
		t.Error("the API key appears in the output")
	}

	show, errOut, code := easel(t, "", nil, "sessions", "show", sessionID(t, out), "--data", dir)
	if code != 0 {
		t.Fatalf("sessions show exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"├─ v2 (refine of v1) · “make it red”",
		"💬 #3 “what does the sign say?” → “" + openaitest.AnswerTo("what does the sign say?") + "” · gpt-5.5",
		"└─ v3 (branch of v1) · “make it night”",
		"#3 ", " answer “what does the sign say?”", "conversation model in ",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("sessions show lacks %q:\n%s", want, show)
		}
	}
	lines := strings.Split(show, "\n")
	answer := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "💬 #3") })
	v2 := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "v2 (refine of v1)") })
	if answer < v2 || !strings.HasPrefix(lines[answer], "│") {
		t.Errorf("the answer is not under v2, the version it was about:\n%s", show)
	}
}

// TestChatResponsesFallback: OpenAI forgets every stored response just
// before the question, so the question and then the branch are each sent
// twice: continuing the response first, then, refused for it, with the
// thread's text and the image they are about; nothing is said in the chat.
func TestChatResponsesFallback(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.OnArrive = func(n int) {
		if n == 3 {
			srv.Forget()
		}
	}
	environ := map[string]string{"OPENAI_API_KEY": "sk-test-fallback", "OPENAI_BASE_URL": srv.URL()}
	script := "a shop sign\nmake it red\nwhat does the sign say?\n@v1 make it night\n"
	out, errOut, code := easel(t, script, environ, "chat", "--provider", "openai-responses", "--data", t.TempDir())
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6:\n%s", len(reqs), out)
	}
	gone := func(i int, previous string) {
		t.Helper()
		if r := reqs[i]; r.Status != 400 || r.Error != "previous_response_not_found" || r.PreviousResponseID != previous {
			t.Errorf("request %d: %d %s continuing %q, want a 400 for the gone %q", i+1, r.Status, r.Error, r.PreviousResponseID, previous)
		}
	}
	resent := func(i int, base []byte, texts ...string) {
		t.Helper()
		r := reqs[i]
		var got []string
		for _, m := range r.Messages {
			got = append(got, m.Role+": "+m.Text)
		}
		if r.Status != 200 || r.PreviousResponseID != "" || !slices.Equal(got, texts) || len(r.Images) != 1 || !bytes.Equal(r.Images[0].Data, base) {
			t.Errorf("request %d: %d continuing %q with %q and %d images; want the thread %q and the image it is about", i+1, r.Status, r.PreviousResponseID, got, len(r.Images), texts)
		}
	}
	v1, v2 := reqs[0].Returned[0], reqs[1].Returned[0]
	gone(2, reqs[1].ResponseID)
	resent(3, v2, "user: a shop sign", "user: make it red", "user: what does the sign say?")
	gone(4, reqs[0].ResponseID)
	resent(5, v1, "user: a shop sign", "user: make it night")
	if !bytes.Equal(reqs[5].Edited, v1) {
		t.Error("the branch did not edit v1")
	}
	if !strings.Contains(out, "💬 "+openaitest.AnswerTo("what does the sign say?")) || !strings.Contains(out, "✅ v3 (branch of v1)") {
		t.Errorf("the question or the branch did not come through:\n%s", out)
	}
	if strings.Contains(out, "❌") || strings.Contains(strings.ToLower(out), "not found") {
		t.Errorf("the fallback was shown to the user:\n%s", out)
	}
}

// TestRunResponsesSlackAndDiscord serves Slack and Discord with
// openai-responses as the default provider: on each, a prompt makes an
// image, and a question in its thread is answered there in words by a
// request continuing the image's response.
func TestRunResponsesSlackAndDiscord(t *testing.T) {
	ai := openaitest.NewServer(t)
	sl := slacktest.NewServer(t)
	dc := discordtest.NewServer(t)
	cfgFile := writeFile(t, fmt.Sprintf("[provider]\ndefault = \"openai-responses\"\n\n[slack]\nenabled = true\napi_url = %q\n\n[discord]\nenabled = true\napi_url = %q\nguilds = [%q]\n",
		sl.APIURL(), dc.URL(), dc.Guild))
	environ := map[string]string{"SLACK_BOT_TOKEN": sl.BotToken, "SLACK_APP_TOKEN": sl.AppToken, "DISCORD_BOT_TOKEN": dc.Token,
		"OPENAI_API_KEY": "sk-test-run-responses", "OPENAI_BASE_URL": ai.URL()}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &syncBuffer{b: &logs}, getenv: func(k string) string { return environ[k] }}
		done <- run(ctx, []string{"run", "-config", cfgFile, "-data", t.TempDir()}, e)
	}()
	answered := func(question string) func(string) bool {
		return func(text string) bool { return strings.Contains(text, openaitest.AnswerTo(question)) }
	}

	// Slack: a slash command, then a reply in its thread.
	sl.Send(t, sl.SlashCommand("UANA", "C1", "a shop sign"))
	sl.WaitFor(t, "the Slack image", func() bool {
		for _, up := range sl.Uploads() {
			if up.Completed && strings.Contains(up.InitialComment, "a shop sign") {
				return true
			}
		}
		return false
	})
	var thread string
	for _, up := range sl.Uploads() {
		if up.Completed && strings.Contains(up.InitialComment, "a shop sign") {
			thread = up.ThreadTS
		}
	}
	_, envs := sl.Post(slacktest.Post{Channel: "C1", User: "UANA", Text: "what does the sign say?", ThreadTS: thread})
	for _, env := range envs {
		sl.Send(t, env)
	}
	isAnswer := answered("what does the sign say?")
	sl.WaitFor(t, "the answer in the Slack thread", func() bool {
		for _, m := range sl.Replies("C1", thread) {
			if m.BotID != "" && isAnswer(m.Text) {
				return true
			}
		}
		return false
	})

	// Discord: a mention, then a question mentioning Easel in its thread.
	dc.Wait(t, "/imagine registered", imagineRegistered(dc))
	dc.Mention(dc.Alice, dc.Channel, "a blue whale")
	var dthread string
	dc.Wait(t, "the Discord image", func() bool {
		for _, th := range dc.Threads(dc.Channel) {
			for _, m := range dc.Messages(th.ID) {
				if len(m.Attachments) == 1 && strings.Contains(m.Content, "a blue whale") {
					dthread = th.ID
					return true
				}
			}
		}
		return false
	})
	dc.Mention(dc.Alice, dthread, "what colour is it?")
	isAnswer = answered("what colour is it?")
	dc.Wait(t, "the answer in the Discord thread", func() bool {
		for _, m := range dc.Messages(dthread) {
			if isAnswer(m.Content) {
				return true
			}
		}
		return false
	})

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("easel run exited %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("easel run did not stop after its context ended")
	}
	// Each question continued the response that made its thread's image.
	made := map[string]string{} // prompt → response id
	for _, r := range ai.Requests() {
		made[r.Prompt] = r.ResponseID
	}
	for question, prompt := range map[string]string{"what does the sign say?": "a shop sign", "what colour is it?": "a blue whale"} {
		found := false
		for _, r := range ai.Requests() {
			if r.Prompt == question {
				found = true
				if r.PreviousResponseID != made[prompt] || r.PreviousResponseID == "" {
					t.Errorf("%q continued %q, want %q (the response of %q)", question, r.PreviousResponseID, made[prompt], prompt)
				}
			}
		}
		if !found {
			t.Errorf("%q was not sent to OpenAI", question)
		}
	}
}

// TestChatResponsesFiveTurns is a 5-turn console session with
// openai-responses against the loopback fake: generate, refine, a question
// answered in words, a branch from v1, and a region edit of the branch.
// Exactly five requests are sent, each continuing the right response; the
// region edit carries a mask of the image it edits, which the fake checks
// (a PNG with alpha of that image's size) and which is pixel for pixel the
// mask of the top-left cell; every stored image is the fake's bytes.
func TestChatResponsesFiveTurns(t *testing.T) {
	srv := openaitest.NewServer(t)
	environ := map[string]string{"OPENAI_API_KEY": "sk-test-five-turns", "OPENAI_BASE_URL": srv.URL()}
	dir := t.TempDir()
	script := "a shop sign --quality low\nmake it red\nwhat does the sign say?\n@v1 make it night\nadd a bell --region top-left\n"
	out, errOut, code := easel(t, script, environ, "chat", "--provider", "openai-responses", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5 (one per turn):\n%s", len(reqs), out)
	}
	id := func(i int) string { return reqs[i].ResponseID }
	for i, want := range []struct {
		prompt, previous, action string
		edited                   []byte
		mask                     bool
	}{
		{"a shop sign", "", "generate", nil, false},
		{"make it red", id(0), "edit", reqs[0].Returned[0], false},
		{"what does the sign say?", id(1), "edit", nil, false},
		{"make it night", id(0), "edit", reqs[0].Returned[0], false},
		{"add a bell\nChange only the top-left part of the image (the area the mask leaves transparent); keep everything else exactly as it is.",
			id(3), "edit", reqs[3].Returned[0], true},
	} {
		r := reqs[i]
		if r.Path != "/v1/responses" || r.Status != 200 || r.PreviousResponseID != want.previous || r.Action != want.action ||
			r.Prompt != want.prompt || len(r.Messages) != 1 || len(r.Images) != 0 || (r.Mask != nil) != want.mask {
			t.Errorf("turn %d: %s %d, continues %q (want %q), action %q, %d messages ending %q, %d images, mask %v", i+1, r.Path, r.Status,
				r.PreviousResponseID, want.previous, r.Action, len(r.Messages), r.Prompt, len(r.Images), r.Mask != nil)
		}
		if !bytes.Equal(r.Edited, want.edited) {
			t.Errorf("turn %d edited another image than the one it refines", i+1)
		}
	}
	// The mask is the top-left cell of the image the branch made.
	v3 := core.Image{Data: reqs[3].Returned[0], MIME: "image/png"}
	w, h, err := core.ImageSize(v3)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := core.ParseRegion("top-left")
	want, _ := core.RegionMask(r.Pixels(w, h), w, h)
	if m := reqs[4].Mask; m == nil || !bytes.Equal(m.Data, want.Data) {
		t.Error("the region edit's mask is not the top-left cell's")
	}
	for _, line := range []string{"✅ v1 · “a shop sign”", "✅ v2 (refine of v1) · “make it red”", "💬 " + openaitest.AnswerTo("what does the sign say?"),
		"✅ v3 (branch of v1) · “make it night”", "✅ v4 (refine of v3) · “add a bell” · region top-left"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	paths := imagePaths(out)
	returned := [][]byte{reqs[0].Returned[0], reqs[1].Returned[0], reqs[3].Returned[0], reqs[4].Returned[0]}
	if len(paths) != len(returned) {
		t.Fatalf("printed %d paths, want %d:\n%s", len(paths), len(returned), out)
	}
	for i, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, returned[i]) {
			t.Errorf("stored image %d differs from the bytes the fake returned", i+1)
		}
	}
}

// TestChatStrictRegionExport: a strict region edit with a provider whose
// image changes every pixel: the version shown changes no pixel outside
// the region, the caption says it is composited, and sessions export
// writes the provider's original, byte for byte, beside it.
func TestChatStrictRegionExport(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.FullSize = true
	environ := map[string]string{"OPENAI_API_KEY": "sk-test-strict", "OPENAI_BASE_URL": srv.URL()}
	dir := t.TempDir()
	script := "a shop sign --size 256x160 --quality low\na bell --region 10,20,30,40 --strict-region\n"
	out, errOut, code := easel(t, script, environ, "chat", "--provider", "openai-responses", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Mask == nil {
		t.Fatalf("%d requests, the second with a mask: %v", len(reqs), len(reqs) == 2 && reqs[1].Mask != nil)
	}
	if !strings.Contains(out, "composited onto v1: nothing outside the region changed") {
		t.Errorf("the caption does not say the image is composited:\n%s", out)
	}
	paths := imagePaths(out)
	if len(paths) != 2 {
		t.Fatalf("%d paths:\n%s", len(paths), out)
	}
	v1, err := png.Decode(bytes.NewReader(reqs[0].Returned[0]))
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := os.ReadFile(paths[1])
	v2, err := png.Decode(bytes.NewReader(shown))
	if err != nil {
		t.Fatal(err)
	}
	provider, _ := png.Decode(bytes.NewReader(reqs[1].Returned[0]))
	r, _, _ := core.ParseRegion("10,20,30,40")
	rect := r.Pixels(256, 160)
	if n := core.ChangedOutside(v1, provider, image.Rectangle{}); n != 256*160 {
		t.Fatalf("the fake's image changes %d pixels, not all", n)
	}
	if n := core.ChangedOutside(v1, v2, rect); n != 0 {
		t.Errorf("%d pixels changed outside the region", n)
	}
	if n := core.ChangedOutside(v1, v2, image.Rectangle{}); n != rect.Dx()*rect.Dy() {
		t.Errorf("%d pixels changed, want the region's %d", n, rect.Dx()*rect.Dy())
	}

	show, _, _ := easel(t, "", nil, "sessions", "show", sessionID(t, out), "-data", dir)
	if !strings.Contains(show, "the provider's original: /") || !strings.Contains(show, `"region":"10,20,30,40","strict_region":true`) {
		t.Errorf("sessions show lacks the original's path or the region flags:\n%s", show)
	}

	export := filepath.Join(t.TempDir(), "export")
	eout, errOut, code := easel(t, "", nil, "sessions", "export", sessionID(t, out), "-o", export, "-data", dir)
	if code != 0 || !strings.Contains(eout, "exported 2 images") || !strings.Contains(eout, "1 provider's original") {
		t.Fatalf("export exited %d: %s%s", code, eout, errOut)
	}
	orig, err := os.ReadFile(filepath.Join(export, "v2-original.png"))
	if err != nil || !bytes.Equal(orig, reqs[1].Returned[0]) || !bytes.Contains(orig, []byte(openaitest.ProvenanceMarker)) {
		t.Errorf("v2-original.png is not the provider's bytes: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(export, "v2.png")); !bytes.Equal(got, shown) {
		t.Error("v2.png is not the composited image")
	}
	page, _ := os.ReadFile(filepath.Join(export, "index.html"))
	if !bytes.Contains(page, []byte(`<a href="v2-original.png">the provider's original</a>`)) {
		t.Errorf("index.html does not link the provider's original:\n%s", page)
	}
}
