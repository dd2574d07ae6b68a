package discord_test

import (
	"context"
	"slices"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
)

// turnTexts returns the texts of the turns of a thread's session.
func turnTexts(t *testing.T, h *harness, thread string) []string {
	t.Helper()
	s, err := h.db.SessionByThread(context.Background(), discord.Platform, thread)
	if err != nil {
		t.Fatalf("session of %s: %v", thread, err)
	}
	var texts []string
	for _, tr := range s.Turns {
		texts = append(texts, tr.Text)
	}
	return texts
}

// Replies posted in a burst in a session thread become its turns in the
// order they were posted.
func TestRepliesAreHandledInOrder(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	first := srv.Mention(srv.Alice, srv.Channel, "a garden")
	thread := h.threadOf(first.ID)
	h.waitResults(thread, 1)
	want := []string{"a garden"}
	for i := range 8 {
		text := "change " + string(rune('a'+i))
		want = append(want, text)
		srv.Say(srv.Alice, thread, text)
	}
	h.waitResults(thread, len(want))
	h.waitIdle(thread)
	if got := turnTexts(t, h, thread); !slices.Equal(got, want) {
		t.Errorf("turns %q, want %q", got, want)
	}
}
