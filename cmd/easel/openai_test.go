package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core/openai/openaitest"
)

// TestChatOpenAI runs easel chat against a loopback OpenAI: the first line is
// one generation, the second one edit whose image is the first result, and
// the stored files are the bytes the server sent.
func TestChatOpenAI(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Key = "sk-test-secret-key-0123456789"
	environ := map[string]string{"OPENAI_API_KEY": srv.Key, "OPENAI_BASE_URL": srv.URL()}
	dir := t.TempDir()
	out, errOut, code := easel(t, "a red fox --quality low\nmake it blue\n", environ, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1/images/generations" || reqs[1].Path != "/v1/images/edits" {
		var paths []string
		for _, r := range reqs {
			paths = append(paths, r.Method+" "+r.Path)
		}
		t.Fatalf("requests %v, want one generation then one edit\n%s", paths, out)
	}
	if reqs[0].Model != "gpt-image-2" || reqs[0].Quality != "low" || reqs[0].Prompt != "a red fox" {
		t.Errorf("generation request: model %q quality %q prompt %q", reqs[0].Model, reqs[0].Quality, reqs[0].Prompt)
	}
	first := reqs[0].Returned[0]
	if len(reqs[1].Images) != 1 || !bytes.Equal(reqs[1].Images[0].Data, first) {
		t.Errorf("the edit's image part is not byte-identical to the first result")
	}
	if !strings.Contains(reqs[1].Prompt, "a red fox") || !strings.Contains(reqs[1].Prompt, "make it blue") || reqs[1].Quality != "low" {
		t.Errorf("edit request lacks context or inherited flags: prompt %q quality %q", reqs[1].Prompt, reqs[1].Quality)
	}
	paths := imagePaths(out)
	if len(paths) != 2 {
		t.Fatalf("printed %d paths, want 2:\n%s", len(paths), out)
	}
	for i, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, reqs[i].Returned[0]) {
			t.Errorf("stored image %d differs from the bytes the server returned", i+1)
		}
		if !bytes.Contains(got, []byte(openaitest.ProvenanceMarker)) {
			t.Errorf("stored image %d lost its provenance block", i+1)
		}
	}
	if !strings.Contains(out, "gpt-image-2") || !strings.Contains(out, "openai") {
		t.Errorf("output does not name the provider and model:\n%s", out)
	}
	if strings.Contains(out+errOut, srv.Key) {
		t.Errorf("the API key appears in the output")
	}
}

// TestChatOpenAIErrors shows each provider error class as its own message.
func TestChatOpenAIErrors(t *testing.T) {
	srv := openaitest.NewServer(t)
	environ := map[string]string{"OPENAI_API_KEY": "sk-test-another-secret-42", "OPENAI_BASE_URL": srv.URL()}
	srv.Fail(openaitest.ModerationBlocked(), openaitest.InsufficientQuota())
	out, errOut, code := easel(t, "something forbidden\na fox\na fox again\n", environ, "chat", "--data", t.TempDir())
	if code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	for _, want := range []string{"❌ OpenAI's safety system declined", "❌ The OpenAI account is out of credits", "✅ v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests: refusals and quota errors must not be retried", n)
	}
	if _, _, code := easel(t, "", environ, "chat", "--data", t.TempDir(), "--config", writeFile(t, "[openai]\nmodel = \"dall-e-3\"\n")); code != 1 {
		t.Errorf("a retired model in the config should fail the start")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := t.TempDir() + "/easel.toml"
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestChatOpenAITurnKinds drives every turn kind through the SDK into the
// fake and checks which endpoint each one uses and with which image.
func TestChatOpenAITurnKinds(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.FullSize = true
	environ := map[string]string{"OPENAI_API_KEY": "sk-test-kinds", "OPENAI_BASE_URL": srv.URL()}
	script := "a lighthouse --size 384x256\nadd a boat\n/regen\n/vary 2\n/hq\n@v1 make it night\n/undo\n"
	out, errOut, code := easel(t, script, environ, "chat", "--data", t.TempDir())
	if code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, out, errOut)
	}
	reqs := srv.Requests()
	if len(reqs) != 6 {
		t.Fatalf("%d provider requests, want 6 (undo costs nothing):\n%s", len(reqs), out)
	}
	returned := func(i int) []byte { return reqs[i].Returned[0] }
	tests := []struct {
		name, path string
		base       []byte // the image part sent, nil for a generation
		n          int
		quality    string
		size       string
	}{
		{"generate", "/v1/images/generations", nil, 1, "", "384x256"},
		{"refine v1", "/v1/images/edits", returned(0), 1, "", "384x256"},
		{"regenerate v2 (from v1 again)", "/v1/images/edits", returned(0), 1, "", "384x256"},
		{"variations of v3", "/v1/images/edits", returned(0), 2, "", "384x256"},
		{"high quality of v4", "/v1/images/edits", returned(3), 1, "high", "768x512"},
		{"branch from v1", "/v1/images/edits", returned(0), 1, "", "384x256"},
	}
	for i, tt := range tests {
		r := reqs[i]
		if r.Path != tt.path || r.N != tt.n || r.Quality != tt.quality || r.Size != tt.size {
			t.Errorf("%s: %s n=%d quality=%q size=%q; want %s n=%d quality=%q size=%q", tt.name, r.Path, r.N, r.Quality, r.Size, tt.path, tt.n, tt.quality, tt.size)
		}
		if tt.base != nil && (len(r.Images) == 0 || !bytes.Equal(r.Images[0].Data, tt.base)) {
			t.Errorf("%s: the image sent is not the expected earlier result", tt.name)
		}
	}
	for _, want := range []string{"✅ v7 (branch of v1)", "↩️ back to v1", "v6 (high quality of v4)", "v3 (regeneration of v1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
