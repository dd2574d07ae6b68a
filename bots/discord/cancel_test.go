package discord_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

// statusWithCancel waits for the channel's status message offering to
// cancel a turn and returns it with the button's custom id.
func (h *harness) statusWithCancel(channel string) (discordtest.Message, string) {
	h.t.Helper()
	var status discordtest.Message
	var id string
	h.srv.Wait(h.t, "a status message with a Cancel button", func() bool {
		for _, m := range h.srv.Messages(channel) {
			if !h.isStatus(m) {
				continue
			}
			for _, b := range m.Buttons() {
				if strings.HasPrefix(b.CustomID, "easel:cancel:") {
					status, id = m, b.CustomID
					return true
				}
			}
		}
		return false
	})
	return status, id
}

// note waits for the ephemeral follow-up of interaction ic and returns it.
func (h *harness) note(ic discordtest.Interaction) discordtest.Message {
	h.t.Helper()
	var note discordtest.Message
	h.srv.Wait(h.t, "an ephemeral note", func() bool {
		for _, id := range h.srv.GetInteraction(ic.ID).Followups {
			if m, ok := h.srv.GetMessage(id); ok && m.Ephemeral() {
				note = m
				return true
			}
		}
		return false
	})
	return note
}

// waitReply waits for a reply in the channel that starts with prefix.
func (h *harness) waitReply(channel, prefix string) {
	h.t.Helper()
	h.srv.Wait(h.t, "a reply "+prefix, func() bool {
		return slices.ContainsFunc(h.replies(channel), func(r string) bool { return strings.HasPrefix(r, prefix) })
	})
}

// The status message of a rendering turn carries a Cancel button: someone
// else's press gets an ephemeral note, the requester's stops the call; the
// thread says so once, shows no result, and a later press is refused.
func TestCancelButton(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	defer close(gate)
	h := start(t, func(s *setup) { s.gen.SetGate(gate) })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	status, id := h.statusWithCancel(thread)

	if note := h.note(srv.Click(t, srv.Bob, status, id)); !strings.Contains(note.Content, "only alice") {
		t.Errorf("bob's press answered %q", note.Content)
	}
	srv.Click(t, srv.Alice, status, id)
	h.waitReply(thread, "🛑 canceled by alice")
	h.waitIdle(thread)
	if n := len(h.results(thread)); n != 0 {
		t.Errorf("%d results after the cancel", n)
	}
	sess, err := h.engine.Session(context.Background(), discord.Platform, thread)
	if err != nil || sess.Turn(1).Status != core.StatusCanceled {
		t.Fatalf("turn after the press: %+v, %v", sess.Turn(1), err)
	}
}

// A restart between the status post and the press: the next process takes
// over the status message, and its Cancel button still works.
func TestCancelButtonAfterRestart(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	defer close(gate)
	s := defaults(t)
	s.unpaced = true
	s.gen.SetGate(gate)
	srv := s.srv
	h := launch(t, s)
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	status, id := h.statusWithCancel(thread)
	h.stop(0) // the call is abandoned, the turn left running

	h = launch(t, s)
	if n, err := h.engine.Resume(context.Background(), h.bot.Thread); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v", n, err)
	}
	srv.Wait(t, "the resumed call", func() bool { return h.gen.Calls.Load() == 2 })
	srv.Click(t, srv.Alice, status, id)
	h.waitReply(thread, "🛑 canceled by alice")
	h.waitIdle(thread)
	if n := len(h.results(thread)); n != 0 {
		t.Errorf("%d results after the cancel", n)
	}
	late := h.note(srv.Click(t, srv.Alice, status, id))
	if !strings.Contains(late.Content, "canceled already") {
		t.Errorf("a second press answered %q", late.Content)
	}
}

// With a turn rendering and another waiting behind it, the status message
// offers a Cancel button for each, named by its prompt: the rendering one
// can still be canceled, and the waiting one then runs.
func TestCancelTheRenderingTurnWhileAnotherWaits(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	defer close(gate)
	h := start(t, func(s *setup) { s.gen.SetGate(gate) })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	h.statusWithCancel(thread)
	srv.Say(srv.Bob, thread, "add a moon")
	var status discordtest.Message
	srv.Wait(t, "a status with two Cancel buttons", func() bool {
		for _, m := range h.srv.Messages(thread) {
			if h.isStatus(m) && len(m.Buttons()) == 2 {
				status = m
				return true
			}
		}
		return false
	})
	b := status.Buttons()
	if b[0].Label != "Cancel “a sailboat”" || b[1].Label != "Cancel “add a moon”" || !strings.Contains(status.Content, "(1 more queued)") {
		t.Fatalf("status %q with buttons %q and %q", status.Content, b[0].Label, b[1].Label)
	}
	srv.Click(t, srv.Alice, status, b[0].CustomID)
	h.waitReply(thread, "🛑 canceled by alice")
	gate <- struct{}{} // the second turn's render; the first one's call ended with its cancel
	srv.Wait(t, "the second turn's result", func() bool { return len(h.results(thread)) == 1 })
	h.waitIdle(thread)
	sess, err := h.engine.Session(context.Background(), discord.Platform, thread)
	if err != nil || sess.Turn(1).Status != core.StatusCanceled || sess.Turn(2).Status != core.StatusDone {
		t.Fatalf("after canceling the rendering turn: %v, turns %+v", err, sess.Turns)
	}
}
