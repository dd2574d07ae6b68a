package discord_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

// placeEngine records where each message it is handed was sent.
type placeEngine struct {
	discord.Engine
	mu     sync.Mutex
	places []string // "call action channel/category"
}

func (e *placeEngine) note(call string, msg core.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.places = append(e.places, call+" "+string(msg.Action)+" "+msg.Channel+"/"+msg.Category)
}

func (e *placeEngine) Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error) {
	e.note("Handle", msg)
	return e.Engine.Handle(ctx, th, msg)
}

func (e *placeEngine) Allowed(msg core.Message) error {
	e.note("Allowed", msg)
	return e.Engine.Allowed(msg)
}

func (e *placeEngine) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.places...)
}

// Every message and interaction in a channel of a category reaches the
// engine with that category, also from inside a session thread, where the
// channel is the thread's parent: /imagine, a button press, a reply in the
// thread and a mention.
func TestCategoryReachesTheEngine(t *testing.T) {
	t.Parallel()
	rec := &placeEngine{}
	var cat, art string
	h := start(t, func(s *setup) {
		cat = s.srv.AddCategory(s.srv.Guild, "art")
		art = s.srv.AddChannel(s.srv.Guild, "posters", cat)
		s.wrap = func(e discord.Engine) discord.Engine { rec.Engine = e; return rec }
	})
	srv := h.srv
	ic := srv.Command(t, srv.Alice, art, "imagine", discordtest.Option{Name: "prompt", Value: "a poster"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	r := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	srv.Click(t, srv.Alice, r, button(t, r, "regenerate"))
	h.waitResults(thread, 2)
	h.waitIdle(thread)
	srv.Say(srv.Alice, thread, "make it red")
	h.waitResults(thread, 3)
	srv.Mention(srv.Bob, art, "a second poster")
	srv.Wait(t, "the mention's turn", func() bool {
		n := 0
		for _, p := range rec.seen() {
			if strings.HasPrefix(p, "Handle ") {
				n++
			}
		}
		return n == 4
	})
	want := art + "/" + cat
	for _, p := range rec.seen() {
		if !strings.HasSuffix(p, " "+want) {
			t.Errorf("the engine was handed %q, want it in %s", p, want)
		}
	}
}
