package discord_test

import (
	"slices"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// Replies posted in a session thread while Easel was down, and a mention
// in the thread's channel, which Discord does not resend, are handled on
// the next start, each once and in order, though Discord rate-limits the
// first read; a reply older than a day is left alone. A start that missed
// nothing handles nothing again.
func TestCatchUpOnWhatWasMissed(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	srv := s.srv
	h := launch(t, s)
	first := srv.Mention(srv.Alice, srv.Channel, "a lighthouse")
	thread := h.threadOf(first.ID)
	h.waitResults(thread, 1)
	h.waitIdle(thread)
	h.stop(10 * time.Second)

	// Easel is down: nothing of this reaches it.
	srv.Post(discordtest.Draft{From: srv.Bob, Channel: thread, Content: "make it old", Ago: 25 * time.Hour})
	srv.Say(srv.Alice, thread, "make it blue")
	srv.Say(srv.Bob, thread, "add a moon")
	missed := srv.Mention(srv.Bob, srv.Channel, "a harbour")
	srv.RateLimit("GET /channels/{channel_id}/messages", 300*time.Millisecond, false)

	h = launch(t, s)
	h.waitResults(thread, 3)
	h.waitResults(h.threadOf(missed.ID), 1)
	h.waitIdle(thread)
	if got, want := turnTexts(t, h, thread), []string{"a lighthouse", "make it blue", "add a moon"}; !slices.Equal(got, want) {
		t.Errorf("turns %q, want %q", got, want)
	}
	if n := h.gen.Calls.Load(); n != 4 {
		t.Errorf("%d provider calls, want 4", n)
	}
	limited := 0
	for _, c := range srv.Calls("GET /channels/{channel_id}/messages") {
		if c.Status == 429 {
			limited++
		}
	}
	if limited != 1 {
		t.Errorf("%d reads rate-limited, want the first", limited)
	}

	// Live replies queue behind the catch-up and keep working.
	srv.Say(srv.Alice, thread, "add a boat")
	h.waitResults(thread, 4)
	h.waitIdle(thread)
	h.stop(10 * time.Second)

	// Nothing was missed this time.
	calls := h.gen.Calls.Load()
	h = launch(t, s)
	later := srv.Mention(srv.Alice, srv.Channel, "a marker")
	h.waitResults(h.threadOf(later.ID), 1)
	h.waitIdle(h.threadOf(later.ID))
	if got := len(turnTexts(t, h, thread)); got != 4 {
		t.Errorf("%d turns in the thread after a start that missed nothing, want 4", got)
	}
	if n := h.gen.Calls.Load() - calls; n != 1 {
		t.Errorf("%d provider calls after a start that missed nothing, want 1 (the marker)", n)
	}
}
