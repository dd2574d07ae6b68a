package discord_test

import (
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core/coretest"
)

// TestHostilePromptIsNeutralised runs /imagine with a prompt full of
// control and bidirectional characters: the thread's name, the starter
// message "@user: prompt" and the caption carry none of them, and the
// provider gets the prompt as typed.
func TestHostilePromptIsNeutralised(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	prompt := string([]rune(coretest.Hostile)) // as JSON carries it
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: prompt})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	starter := srv.GetInteraction(ic.ID).Original
	thread := h.threadOf(starter)
	caption := h.waitResults(thread, 1)[0].Content
	srv.Wait(t, "the starter message to link the thread", func() bool {
		m, _ := srv.GetMessage(starter)
		return strings.Contains(m.Content, "<#"+thread+">")
	})
	ch, _ := srv.GetChannel(thread)
	m, _ := srv.GetMessage(starter)
	for _, c := range []struct{ name, text, want string }{
		{"thread name", ch.Name, "🎨 a fox[2J[H ]0;pwned ]8;;https://evil.example/\\click"},
		{"starter message", m.Content, "<@" + srv.Alice.ID + ">: a fox[2J[H ]0;pwned"},
		{"caption", caption, "v1 · “a fox[2J[H ]0;pwned"},
	} {
		if err := coretest.Inert(c.text); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !strings.Contains(c.text, c.want) || !strings.Contains(c.text, "gnp.exe isolated") {
			t.Errorf("%s = %q, want its text kept", c.name, c.text)
		}
	}
	if got := h.gen.Requests()[0].Prompt; got != prompt {
		t.Errorf("the provider got %q, want the prompt as typed", got)
	}
}
