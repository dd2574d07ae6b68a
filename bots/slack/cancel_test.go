package slack

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

// status waits for the thread's status message offering to cancel turn
// and returns its ts and the action_id of that turn's Cancel button.
func (h *harness) status(channel, root string, turn int) (ts, actionID string) {
	h.t.Helper()
	h.fake.WaitFor(h.t, "a status message with a Cancel button", func() bool {
		for _, m := range h.fake.Replies(channel, root) {
			for id, value := range buttonsOf(m.Blocks) {
				if _, t, ok := parseValue(value); ok && isCancel(id) && t == turn && !m.Deleted {
					ts, actionID = m.TS, id
					return true
				}
			}
		}
		return false
	})
	return ts, actionID
}

// reply waits for a reply in the thread that starts with prefix.
func (h *harness) reply(channel, root, prefix string) {
	h.t.Helper()
	h.fake.WaitFor(h.t, "a reply "+prefix, func() bool {
		for _, r := range h.fake.Replies(channel, root) {
			if strings.HasPrefix(r.Text, prefix) && !r.Deleted {
				return true
			}
		}
		return false
	})
}

// count returns how many replies in the thread start with prefix.
func (h *harness) count(channel, root, prefix string) int {
	n := 0
	for _, r := range h.fake.Replies(channel, root) {
		if strings.HasPrefix(r.Text, prefix) && !r.Deleted {
			n++
		}
	}
	return n
}

// The status line of a rendering turn carries a Cancel button: someone
// else's press gets a private note, the requester's stops the call; the
// thread says so once and shows no image.
func TestCancelButtonStopsARunningTurn(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate})
	root := h.slash(ana, "C1", "a clock")
	status, cancel := h.status("C1", root, 1)

	h.deliver(h.fake.Click(t, bob, "C1", status, cancel))
	h.ephemeral(bob, "only ana")
	h.deliver(h.fake.Click(t, ana, "C1", status, cancel))
	h.reply("C1", root, "🛑 canceled by ana")
	h.settle()
	if n := h.count("C1", root, "🛑"); n != 1 {
		t.Errorf("the cancel was told %d times", n)
	}
	if ups := h.fake.Uploads(); len(ups) != 0 {
		t.Errorf("a canceled turn uploaded %+v", ups)
	}
	sess, err := h.db.SessionByThread(context.Background(), Platform, threadKey("C1", root))
	if err != nil || sess.Turn(1).Status != core.StatusCanceled || sess.Turn(1).Cancel.By.ID != ana {
		t.Fatalf("turn after the press: %+v, %v", sess.Turn(1), err)
	}
}

// A queued turn's Cancel button still works after the bot forgot the
// thread (a restart between the status post and the press): the queued
// turn is dropped and the running one posts its image.
func TestCancelQueuedTurnAfterRestart(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate})
	root := h.queuedBehind(ana)
	status, cancel := h.status("C1", root, 2)

	h.bot.threads = newThreadCache()
	h.deliver(h.fake.Click(t, ana, "C1", status, cancel))
	gate <- struct{}{}
	h.images(1)
	h.reply("C1", root, "🛑 canceled by ana")
	h.settle()
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
}

// Pressing Cancel after the turn ended, or through a forged value naming
// another thread's session, gets a private note and changes nothing.
func TestCancelBadPresses(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate})
	other := h.slash(bob, "C2", "an owl")
	gate <- struct{}{}
	h.images(1)
	h.settle()
	_, otherSession := h.buttons("C2", other, 1)

	root := h.slash(ana, "C1", "a clock")
	status, cancel := h.status("C1", root, 1)
	late := h.fake.Click(t, ana, "C1", status, cancel)
	forged := h.fake.Click(t, ana, "C1", status, cancel)
	_, session, _ := strings.Cut(string(forged.Payload), `"value":"`)
	session, _, _ = strings.Cut(session, ":")
	forged.Payload = bytes.ReplaceAll(forged.Payload, []byte(`"value":"`+session+`:1"`), []byte(`"value":"`+otherSession+`:1"`))
	gate <- struct{}{}
	h.images(2)
	h.settle()

	h.deliver(late)
	h.ephemeral(ana, "already finished")
	h.deliver(forged)
	h.ephemeral(ana, "belongs to no Easel session of this thread")
	s, err := h.db.Session(context.Background(), otherSession)
	if err != nil || s.Turn(1).Status != core.StatusDone || s.Turn(1).Cancel != nil {
		t.Errorf("the other session after a forged press: %+v, %v", s.Turn(1), err)
	}
}

// With a turn rendering and another waiting behind it, the status message
// offers a Cancel button for each, named by its prompt: the rendering one
// can still be canceled, and the waiting one then runs.
func TestCancelTheRenderingTurnWhileAnotherWaits(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate})
	root := h.queuedBehind(bob)
	status, queued := h.status("C1", root, 2)
	_, rendering := h.status("C1", root, 1)
	if rendering != cancelActionID || queued != cancelActionID+"_2" {
		t.Errorf("Cancel buttons %q (rendering) and %q (queued)", rendering, queued)
	}
	for _, m := range h.fake.Replies("C1", root) {
		if m.TS == status && (!strings.Contains(string(m.Blocks), "Cancel “a clock”") || !strings.Contains(string(m.Blocks), "Cancel “add a cat”")) {
			t.Errorf("the buttons do not name their requests: %s", m.Blocks)
		}
	}
	h.deliver(h.fake.Click(t, bob, "C1", status, rendering))
	h.ephemeral(bob, "only ana")
	h.deliver(h.fake.Click(t, ana, "C1", status, rendering))
	h.reply("C1", root, "🛑 canceled by ana")
	gate <- struct{}{} // the second turn's render; the first one's call ended with its cancel
	h.images(1)
	h.settle()
	_, session := h.buttons("C1", root, 1)
	s, err := h.db.Session(context.Background(), session)
	if err != nil || s.Turn(1).Status != core.StatusCanceled || s.Turn(2).Status != core.StatusDone {
		t.Errorf("after canceling the rendering turn: %v; turns %s and %s", err, s.Turn(1).Status, s.Turn(2).Status)
	}
}
