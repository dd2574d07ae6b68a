package slack

import (
	"strings"
	"testing"

	"github.com/easel-bot/easel/core/coretest"
)

// TestHostilePromptIsNeutralised runs /imagine with a prompt full of
// control and bidirectional characters: the root message "@user: prompt"
// and the caption carry none of them, and the provider gets the prompt as
// typed.
func TestHostilePromptIsNeutralised(t *testing.T) {
	h := newHarness(t, options{})
	prompt := string([]rune(coretest.Hostile)) // as JSON carries it
	root := h.slash(ana, "C1", prompt)
	m, _ := h.fake.Message("C1", root)
	caption := h.images(1)[0].InitialComment
	for _, c := range []struct{ name, text, want string }{
		{"root message", m.Text, "<@" + ana + ">: a fox[2J[H ]0;pwned ]8;;https://evil.example/\\click"},
		{"caption", caption, "v1 · “a fox[2J[H ]0;pwned"},
	} {
		if err := coretest.Inert(c.text); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !strings.HasPrefix(c.text, c.want) || !strings.Contains(c.text, "gnp.exe isolated") {
			t.Errorf("%s = %q, want its text kept", c.name, c.text)
		}
	}
	if got := h.gen.Requests()[0].Prompt; got != prompt {
		t.Errorf("the provider got %q, want the prompt as typed", got)
	}
}
