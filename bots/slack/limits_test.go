package slack

import (
	"strings"
	"testing"
)

// TestFlagErrorsNameTheConfiguredLimits sends /imagine with values out of
// range: each is refused before anything is posted or queued, and the
// message names the engine's limits (max n 4 and 4,000 characters in the
// harness) and the real seed range.
func TestFlagErrorsNameTheConfiguredLimits(t *testing.T) {
	h := newHarness(t, options{})
	for _, c := range []struct{ text, want string }{
		{"a fox --n 0", "--n 0 is not allowed: use a number from 1 to 4"},
		{"a fox --n 5", "--n 5 is not allowed: use a number from 1 to 4"},
		{"a fox --seed 18446744073709551616", "--seed 18446744073709551616 is not allowed: use a whole number from 0 to 9223372036854775807"},
		{strings.Repeat("x", 4001), "the prompt is 4001 characters long; the limit is 4000"},
	} {
		h.deliver(h.fake.SlashCommand(ana, "C1", c.text))
		h.ephemeral(ana, c.want)
	}
	for _, m := range h.fake.Messages("C1") {
		if m.BotID != "" {
			t.Errorf("message %q posted (deleted: %v) for a refused command", m.Text, m.Deleted)
		}
	}
	if n := h.engine.handles.Load(); n != 0 {
		t.Errorf("%d refused commands reached the engine", n)
	}
}
