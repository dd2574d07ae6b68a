package discord_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// Option values of 6,000 characters (Discord's most for a string option;
// some are forged past the max_length Discord's client keeps to) are
// refused with the engine's message, cut to fit a message, and change
// nothing; an autocomplete for one is answered in time, with no choices.
func TestLongOptionValues(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	ada := admin(srv)
	long := strings.Repeat("w", 6000)
	short := func(what, text string, want ...string) {
		t.Helper()
		wantIn(t, what, text, want...)
		if n := utf8.RuneCountInString(text); n > 2000 {
			t.Errorf("%s is %d characters long, over Discord's 2,000", what, n)
		}
	}
	short("a 6,000-character definition", h.easel(ada, srv.Channel, "style set",
		discordtest.Option{Name: "name", Value: "long"}, discordtest.Option{Name: "definition", Value: long}),
		"the style's words are 6000 characters long; the limit is 1000")
	short("a 6,000-character name", h.answer(srv.CommandForged(t, ada, srv.Channel, "easel style set",
		discordtest.Option{Name: "name", Value: long}, discordtest.Option{Name: "definition", Value: "art"})),
		"is not a style name")
	short("a 6,000-character default model", h.answer(srv.CommandForged(t, ada, srv.Channel, "easel channel set",
		discordtest.Option{Name: "model", Value: long + " --n 4"})), "❌ --model")
	if got := h.styles(); len(got) != 0 {
		t.Errorf("styles %q after refused commands, want none", got)
	}
	wantIn(t, "channel show", h.easel(srv.Bob, srv.Channel, "channel show"), "No defaults apply here")

	ic := srv.CommandForged(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"},
		discordtest.Option{Name: "style", Value: long})
	srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	note, _ := srv.GetMessage(srv.GetInteraction(ic.ID).Followups[0])
	short("the note on a 6,000-character style", note.Content, "is not a style name")
	if len(srv.Threads(srv.Channel)) != 0 {
		t.Error("a thread was started for an /imagine with a 6,000-character style")
	}
	if got := h.suggested(srv.AutocompleteForged(t, srv.Alice, srv.Channel, "imagine", "style",
		discordtest.Option{Name: "style", Value: long})); len(got) != 0 {
		t.Errorf("a 6,000-character autocomplete was offered %q", got)
	}

	// A model typed with flags after it stays the model's value, which
	// the engine refuses, rather than adding flags.
	ic = srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a hare"},
		discordtest.Option{Name: "model", Value: "gpt-image-2 --n 4"})
	srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	note, _ = srv.GetMessage(srv.GetInteraction(ic.ID).Followups[0])
	wantIn(t, "the note on a model with flags", note.Content, `--model "gpt-image-2 --n 4" is not a valid name`)
	if n := h.gen.Calls.Load(); n != 0 || len(srv.Threads(srv.Channel)) != 0 {
		t.Errorf("%d provider calls and threads %v for refused commands", n, srv.Threads(srv.Channel))
	}
}

// A style's words full of control characters and escape sequences are
// kept as typed for the provider, and shown without them: in /easel's
// answers and in the autocomplete's choices. A name with them is refused
// with a message that carries none.
func TestHostileStyleIsNeutralised(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	ada := admin(srv)
	hostile := string([]rune(coretest.Hostile)) // as JSON carries it
	shown := map[string]string{
		"style set": h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: "evil"},
			discordtest.Option{Name: "definition", Value: hostile}),
		"style list": h.easel(srv.Bob, srv.Channel, "style list"),
		"a hostile name": h.answer(srv.CommandForged(t, ada, srv.Channel, "easel style set",
			discordtest.Option{Name: "name", Value: "x\x1b[2J\u202e"}, discordtest.Option{Name: "definition", Value: "art"})),
	}
	ic := srv.Autocomplete(t, srv.Alice, srv.Channel, "imagine", "style", discordtest.Option{Name: "style", Value: "ev"})
	h.suggested(ic)
	for _, c := range srv.GetInteraction(ic.ID).Choices {
		shown["choice "+c.Value.(string)] = c.Name
	}
	wantIn(t, "style set", shown["style set"], "✅ Style `evil` saved", "a fox[2J[H ]0;pwned")
	wantIn(t, "a hostile name", shown["a hostile name"], "is not a style name")
	wantIn(t, "the choice", shown["choice evil"], "evil — a fox[2J[H")
	for what, text := range shown {
		if err := coretest.Inert(text); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	req, _ := h.imagine(srv.Alice, srv.Channel, discordtest.Option{Name: "prompt", Value: "a hare"},
		discordtest.Option{Name: "style", Value: "evil"})
	if req.Prompt != "a hare, "+strings.TrimSpace(hostile) {
		t.Errorf("the provider got %q, want the style's words as typed", req.Prompt)
	}
}

// gatedStyles is an engine whose SetStyle, once hold is set, waits for
// gate before it acts.
type gatedStyles struct {
	discord.Engine
	hold atomic.Bool
	gate chan struct{}
}

func (e *gatedStyles) SetStyle(ctx context.Context, msg core.Message, name, spec string, refs []core.Image) (core.Style, bool, error) {
	if e.hold.Load() {
		<-e.gate
	}
	return e.Engine.SetStyle(ctx, msg, name, spec, refs)
}

// Mentions in a style's words (@everyone, @here, a role, a user) ping no
// one wherever Easel shows them or the prompts that use them: in /easel's
// answers, also one posted in the channel once the interaction's token
// has expired (which pings only who asked), the autocomplete's choices
// and an /imagine's starter, thread and results.
func TestMentionsInAStyleAreInert(t *testing.T) {
	t.Parallel()
	gated := &gatedStyles{gate: make(chan struct{})}
	h := start(t, func(s *setup) { s.wrap = func(e discord.Engine) discord.Engine { gated.Engine = e; return gated } })
	srv := h.srv
	ada := admin(srv)
	words := fmt.Sprintf("@everyone @here <@&%s> <@%s> <@!%s> poster art", roleID, srv.Bob.ID, srv.Bob.ID)

	loud := []discordtest.Option{{Name: "name", Value: "loud"}, {Name: "definition", Value: words}}
	h.easel(ada, srv.Channel, "style set", loud...)
	h.easel(srv.Bob, srv.Channel, "style list")
	h.easel(ada, srv.Channel, "channel set", discordtest.Option{Name: "style", Value: "loud"})
	h.easel(srv.Bob, srv.Channel, "channel show")
	h.suggested(srv.Autocomplete(t, srv.Alice, srv.Channel, "imagine", "style", discordtest.Option{Name: "style", Value: "lo"}))
	req, thread := h.imagine(srv.Alice, srv.Channel, discordtest.Option{Name: "prompt", Value: "a fox <@&" + roleID + "> @everyone"},
		discordtest.Option{Name: "style", Value: "loud"})
	h.waitIdle(thread)
	if !strings.Contains(req.Prompt, words) {
		t.Errorf("the provider got %q, want the style's words as typed", req.Prompt)
	}
	gated.hold.Store(true)
	ic := srv.Command(t, ada, srv.Channel, "easel style set", loud...)
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	srv.ExpireTokens() // 15 minutes pass
	close(gated.gate)
	srv.Wait(t, "the answer in the channel", func() bool {
		return slices.ContainsFunc(srv.Messages(srv.Channel), func(m discordtest.Message) bool {
			return strings.Contains(m.Content, "Style `loud` replaced")
		})
	})

	shown := 0
	for _, ch := range []string{srv.Channel, thread} {
		for _, m := range srv.Messages(ch) {
			if m.Author.ID != srv.Bot.ID {
				continue
			}
			shown++
			want := []string(nil)
			if strings.HasPrefix(m.Content, "<@"+ada.ID+"> ") {
				want = []string{"user:" + ada.ID} // the answer posted for the expired token
			}
			if !slices.Equal(m.Pings, want) {
				t.Errorf("%q pinged %q, want %q", m.Content, m.Pings, want)
			}
		}
	}
	if shown < 6 {
		t.Errorf("only %d messages by Easel to check", shown)
	}
}

// A flood of 200 autocompletes at once is answered in full, each within
// Discord's 3 seconds, and none is recorded in the inbox; /imagine still
// works after.
func TestAutocompleteFlood(t *testing.T) {
	s := defaults(t)
	s.srv.WaitTimeout = time.Minute
	log := &orderLog{srv: s.srv}
	s.events = func(l discord.EventLog) discord.EventLog { log.EventLog, log.db = l, l.(*storage.DB); return log }
	h := launch(t, s)
	srv := h.srv
	ada := admin(srv)
	for _, name := range []string{"brand", "neon", "pastel"} {
		h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: name}, discordtest.Option{Name: "definition", Value: name})
	}
	early, _ := log.recorded()
	us := users(h, 200)
	ics := make([]discordtest.Interaction, len(us))
	for i, u := range us {
		ics[i] = srv.Autocomplete(t, u, srv.Channel, "imagine", "style", discordtest.Option{Name: "style", Value: "n"})
	}
	var worst time.Duration
	srv.Wait(t, "every autocomplete answered", func() bool {
		worst = 0
		for _, ic := range ics {
			got := srv.GetInteraction(ic.ID)
			if got.AckType == 0 {
				return false
			}
			worst = max(worst, got.AckLatency())
		}
		return true
	})
	t.Logf("slowest of %d autocompletes at once answered in %s", len(ics), worst)
	for _, ic := range ics {
		got := srv.GetInteraction(ic.ID)
		if got.AckType != discordtest.CallbackAutocomplete || got.AckLatency() > discordtest.InteractionDeadline || len(got.Choices) != 2 {
			t.Fatalf("autocomplete %s: type %d after %s with %d choices, want type 8 within 3s with neon and brand",
				ic.ID, got.AckType, got.AckLatency(), len(got.Choices))
		}
	}
	if now, late := log.recorded(); len(now) != len(early) || len(late) != 0 {
		t.Errorf("%d deliveries recorded during the flood, want none", len(now)-len(early)+len(late))
	}
	if req, _ := h.imagine(srv.Alice, srv.Channel, discordtest.Option{Name: "prompt", Value: "a fox"}); req.Prompt != "a fox" {
		t.Errorf("after the flood /imagine asked %q", req.Prompt)
	}
}
