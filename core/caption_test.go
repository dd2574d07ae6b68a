package core_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// hostileSession is a session whose prompts, user name and error carry
// coretest.Hostile, and a newline that would start a fake line of output.
func hostileSession() *core.Session {
	ana := core.User{ID: "U1", Name: "ana\u202e\x1b[31m"}
	prompt := coretest.Hostile + "\nv9 · “a fake version”"
	return &core.Session{ID: "s1", Platform: "chat", CreatedBy: ana, Head: 2, Turns: []core.Turn{
		{ID: 1, Kind: core.KindGenerate, Action: core.ActionPrompt, User: ana, Text: prompt + " --no \u202ex", Prompt: prompt,
			Provider: "preview", Status: core.StatusDone, Outputs: []int{1}},
		{ID: 2, Kind: core.KindRefine, Action: core.ActionPrompt, User: ana, Text: "and \x1b]0;again\x07", Prompt: "and \x1b]0;again\x07",
			Provider: "preview", Status: core.StatusDone, Outputs: []int{2}},
		{ID: 3, Kind: core.KindGenerate, Action: core.ActionPrompt, User: ana, Text: "x --\x1b[2J", Status: core.StatusFailed,
			Error: "unknown flag --\x1b[2J"},
	}, Versions: []core.Version{
		{N: 1, Turn: 1, Image: core.ImageRef{SHA256: "a", MIME: "image/png", Width: 64, Height: 64}},
		{N: 2, Parent: 1, Turn: 2, Image: core.ImageRef{SHA256: "b", MIME: "image/png", Width: 64, Height: 64}},
	}}
}

func TestCaptionNeutralisesWhatAUserTyped(t *testing.T) {
	s := hostileSession()
	for n := 1; n <= 2; n++ {
		c := core.Caption(s, n)
		if err := coretest.Inert(c); err != nil {
			t.Errorf("core.Caption(v%d): %v", n, err)
		}
		if strings.Contains(c, "\n") {
			t.Errorf("core.Caption(v%d) = %q spans lines", n, c)
		}
	}
	if c := core.Caption(s, 1); !strings.HasPrefix(c, "v1 · “a fox[2J[H ]0;pwned ]8;;https://evil.example/\\click]8;;\\") || !strings.Contains(c, "gnp.exe isolated") {
		t.Errorf("core.Caption(v1) = %q: the visible text should stay", c)
	}
}

func TestTreeAndTurnsAreEscapedForTheTerminal(t *testing.T) {
	s := hostileSession()
	var tree, turns bytes.Buffer
	if err := core.WriteTree(&tree, s, func(core.ImageRef) string { return "/data/x\x1b[2J.png" }); err != nil {
		t.Fatal(err)
	}
	if err := core.WriteTurns(&turns, s); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"core.WriteTree": tree.String(), "core.WriteTurns": turns.String()} {
		if err := coretest.Inert(out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, want := range []string{`\x1b[2J`, `\u202e`} {
			if !strings.Contains(out, want) {
				t.Errorf("%s does not show %s visibly: %q", name, want, out)
			}
		}
	}
	// Two versions with a path each; three turns. A prompt's newline shows
	// as a space on its version's line; cut to length, its bytes that are not
	// UTF-8 are U+FFFD.
	lines := strings.Split(strings.TrimSuffix(tree.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "\\x00 \ufffd31m \\u009b31m \\x7f \\u202egnp.exe \\u2066isolated\\u2069 \ufffd\ufffd v9 · “a fake") {
		t.Errorf("core.WriteTree wrote %d lines, want 4, the first showing the prompt's controls as escapes: %q", len(lines), tree.String())
	}
	if lines := strings.Split(strings.TrimSuffix(turns.String(), "\n"), "\n"); len(lines) != 3 {
		t.Errorf("core.WriteTurns wrote %d lines, want 3: %q", len(lines), turns.String())
	}
}
