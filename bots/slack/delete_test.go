package slack

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

// The Delete button under a result asks for confirmation (Slack's dialog),
// is refused to others with a private note, and for the requester takes
// the image and its buttons out of the thread and marks the version
// deleted; pressing it again, or another button of the deleted version,
// gets a private note.
func TestDeleteButton(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	img := h.images(1)[0]
	b1, session := h.buttons("C1", root, 1)
	h.settle()
	m, _ := h.fake.Message("C1", b1)
	if !strings.Contains(string(m.Blocks), `"confirm":{`) {
		t.Fatalf("the Delete button asks for no confirmation: %s", m.Blocks)
	}
	again := h.fake.Click(t, ana, "C1", b1, deleteActionID)
	regen := h.fake.Click(t, ana, "C1", b1, "regenerate")

	h.deliver(h.fake.Click(t, bob, "C1", b1, deleteActionID))
	h.ephemeral(bob, "only ana")
	h.bot.threads = newThreadCache() // a restart: the button's value and the store are enough
	h.deliver(h.fake.Click(t, ana, "C1", b1, deleteActionID))
	h.reply("C1", root, "🗑️ v1 deleted by ana")
	h.fake.WaitFor(t, "the post taken down", func() bool {
		m, _ := h.fake.Message("C1", b1)
		return m.Deleted && len(h.shownFiles("C1", root)) == 0
	})
	for _, u := range h.fake.Uploads() {
		if u.FileID == img.FileID && !u.Deleted {
			t.Error("the image's file was not deleted")
		}
	}
	sess, err := h.db.Session(context.Background(), session)
	if err != nil || sess.Version(1).Deleted == nil || sess.Version(1).Deleted.By.ID != ana || sess.Head != 0 {
		t.Fatalf("session after the delete: %+v, %v", sess, err)
	}

	h.deliver(again)
	h.ephemeral(ana, "v1 was deleted already")
	h.deliver(regen)
	h.ephemeral(ana, "v1 was deleted; it can no longer be refined or regenerated")
	h.settle()
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
	if got := core.KindOf(h.engine.Check(context.Background(), core.Message{Platform: Platform, Thread: threadKey("C1", root),
		User: core.User{ID: ana}, Action: core.ActionHighQuality, Version: 1, SessionID: session})); got != core.Conflict {
		t.Errorf("high quality of the deleted version checks as %q", got)
	}
}
