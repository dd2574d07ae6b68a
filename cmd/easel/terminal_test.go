package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// TestHostilePromptsDoNotReachTheTerminal types prompts that would clear
// the screen, retitle the window, plant links and reverse text into easel
// chat, then reads the session back with sessions list, show and show
// -json: no output holds a byte that acts, what was there shows as an
// escape, and the record keeps what was typed.
func TestHostilePromptsDoNotReachTheTerminal(t *testing.T) {
	dir := t.TempDir()
	refine := "make it \u202eblue\x1b[2J"
	input := coretest.Hostile + "\n" + refine + "\n/history\na fox --t\x1b]0;title\x07\n"
	out, errOut, code := easel(t, input, nil, "chat", "--data", dir)
	if code != 0 || strings.Count(out, "✅") != 2 {
		t.Fatalf("easel chat exited %d with %d images, want 2: %q %q", code, strings.Count(out, "✅"), out, errOut)
	}
	id := sessionID(t, out)
	list, _, _ := easel(t, "", nil, "sessions", "list", "--data", dir)
	show, _, _ := easel(t, "", nil, "sessions", "show", id, "--data", dir)
	record, _, code := easel(t, "", nil, "sessions", "show", id, "-json", "--data", dir)
	if code != 0 {
		t.Fatalf("sessions show -json exited %d", code)
	}
	for _, c := range []struct {
		name, out string
		shows     []string
	}{
		{"chat", out + errOut, []string{`unknown flag --t\x1b]0;title\x07`, `a fox\x1b[2J\x1b[H`, `make it \u202eblue\x1b[2J`}},
		{"sessions list", list, []string{`a fox\x1b[2J\x1b[H \x1b]0;pwned\x07`}},
		{"sessions show", show, []string{`a fox\x1b[2J\x1b[H`, `\u202egnp.exe \u2066isolated\u2069`, `make it \u202eblue\x1b[2J`}},
		{"sessions show -json", record, []string{`\u202egnp.exe \u2066isolated\u2069`, `\u009b31m \u007f`}},
	} {
		if err := coretest.Inert(c.out); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		for _, want := range c.shows {
			if !strings.Contains(c.out, want) {
				t.Errorf("%s does not show %q: %q", c.name, want, c.out)
			}
		}
	}
	var s core.Session
	if err := json.Unmarshal([]byte(record), &s); err != nil {
		t.Fatalf("sessions show -json: %v", err)
	}
	// Stored as JSON, each byte that is not UTF-8 is U+FFFD; all else is kept.
	if want := string([]rune(coretest.Hostile)); len(s.Turns) != 2 || s.Turns[0].Prompt != want || s.Turns[1].Prompt != refine {
		t.Errorf("the record does not keep what was typed: %d turns, %q", len(s.Turns), record)
	}
}
