package main

import (
	"strings"
	"testing"
)

// TestChatOverlongLine pipes a 2 MiB line between two prompts into easel
// chat: it gets the answer any prompt over engine.max_prompt_chars gets,
// and the prompts before and after it make their images.
func TestChatOverlongLine(t *testing.T) {
	input := "a red fox\n" + strings.Repeat("x", 2<<20) + "\na blue hen\n"
	out, errOut, code := easel(t, input, nil, "chat", "--data", t.TempDir())
	if code != 0 {
		t.Fatalf("easel chat exited %d: %s", code, errOut)
	}
	for _, want := range []string{"✅ v1 · “a red fox”", "❌ the prompt is 2097152 characters long; the limit is 32000\n", "✅ v2 (refine of v1) · “a blue hen”"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
