package discord_test

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// confirmation presses the Delete button of result r as from and returns
// the ephemeral question it gets, with the custom id of its button.
func (h *harness) confirmation(from discordtest.User, r discordtest.Message) (discordtest.Message, string) {
	h.t.Helper()
	ic := h.srv.Click(h.t, from, r, button(h.t, r, "delete"))
	var q discordtest.Message
	h.srv.Wait(h.t, "the question", func() bool {
		var ok bool
		q, ok = h.srv.GetMessage(h.srv.GetInteraction(ic.ID).Original)
		return ok
	})
	if !q.Ephemeral() || !strings.Contains(q.Content, "Dismiss this message to keep it") {
		h.t.Fatalf("Delete answered %q (ephemeral %v)", q.Content, q.Ephemeral())
	}
	return q, button(h.t, q, "delete-confirm")
}

// A result's Delete button asks first, in a message only the presser sees;
// confirmed by the requester, the result leaves the thread and the version
// is marked deleted; confirmed by someone else, or again, it gets a note.
func TestDeleteButton(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	r := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)

	q, confirm := h.confirmation(srv.Bob, r)
	if note := h.note(srv.Click(t, srv.Bob, q, confirm)); !strings.Contains(note.Content, "only alice") {
		t.Errorf("bob's confirmation answered %q", note.Content)
	}
	q, confirm = h.confirmation(srv.Alice, r)
	again := q
	srv.Click(t, srv.Alice, q, confirm)
	h.waitReply(thread, "🗑️ v1 deleted by alice")
	srv.Wait(t, "the result taken down", func() bool { return len(h.results(thread)) == 0 })
	sess, err := h.engine.Session(context.Background(), discord.Platform, thread)
	if err != nil || sess.Version(1).Deleted == nil || sess.Head != 0 {
		t.Fatalf("session after the delete: %+v, %v", sess, err)
	}
	if note := h.note(srv.Click(t, srv.Alice, again, confirm)); !strings.Contains(note.Content, "deleted already") {
		t.Errorf("a second confirmation answered %q", note.Content)
	}
}
