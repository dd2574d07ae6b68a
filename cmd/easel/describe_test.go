package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/usage"
)

// TestDescribeInChat: `easel chat` describes an image file with the
// preview provider, /use 1 starts a session with the first suggestion, and
// `easel usage` counts the describe as a turn without an image.
func TestDescribeInChat(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(img, coretest.PNG(1), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := easel(t, "/describe "+img+"\n/use 1\n", nil, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "💡 prompts for photo.png:") || !strings.Contains(out, "✅ ") {
		t.Errorf("chat output:\n%s", out)
	}
	out, errOut, code = easel(t, "", nil, "usage", "-data", dir, "-platform", "console", "-json")
	if code != 0 {
		t.Fatalf("easel usage exited %d: %s", code, errOut)
	}
	var r usage.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(r.Users) != 1 || r.Users[0].Month.Turns != 2 || r.Users[0].Month.Images != 1 {
		t.Errorf("console usage after a describe and a prompt: %s", out)
	}
}
