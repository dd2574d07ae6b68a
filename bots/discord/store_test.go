package discord_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// The disk fills up while an image renders and a reply waits behind it. The
// thread is told once, both messages get ❌ (not a typing indicator and an
// hourglass forever), and once the disk has room the next reply runs
// everything, each result posted once.
func TestStoreFullGivesUpOnceAndResumes(t *testing.T) {
	t.Parallel()
	var fs *coretest.FailingStore
	h := start(t, func(s *setup) {
		s.gen.SetGate(make(chan struct{}, 1))
		s.engine.StoreRetry = 200 * time.Millisecond
		s.store = func(db *storage.DB) *coretest.FailingStore {
			fs = coretest.NewFailingStore(db)
			return fs
		}
	})
	srv := h.srv
	mention := srv.Mention(srv.Alice, srv.Channel, "a red fox")
	thread := h.threadOf(mention.ID)
	srv.Wait(t, "the first render", func() bool { return h.gen.Calls.Load() == 1 })
	waiting := srv.Say(srv.Alice, thread, "make it blue")
	srv.Wait(t, "the reply queued", func() bool { return queued(h, thread) })

	fs.SetFailing(true)
	h.gen.Gate() <- struct{}{} // the image is made but cannot be stored
	for _, id := range []string{mention.ID, waiting.ID} {
		srv.Wait(t, "❌ on "+id, func() bool {
			m, _ := srv.GetMessage(id)
			return slices.Contains(m.Reactions, "❌")
		})
	}
	h.waitIdle(thread)

	fs.SetFailing(false)
	h.gen.SetGate(nil)
	again := srv.Say(srv.Alice, thread, "add a hat")
	srv.Wait(t, "✅ on the last reply", func() bool {
		m, _ := srv.GetMessage(again.ID)
		return slices.Contains(m.Reactions, "✅")
	})
	h.waitIdle(thread)
	if n := len(h.results(thread)); n != 3 {
		t.Errorf("%d results posted, want 3 (each turn once)", n)
	}
	notes := 0
	for _, r := range h.replies(thread) {
		if strings.Contains(r, "can't save its work") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("the thread was told %d times that Easel gave up on it, want once: %q", notes, h.replies(thread))
	}
}

// queued reports whether the thread's session has two turns recorded.
func queued(h *harness, thread string) bool {
	s, err := h.db.SessionByThread(context.Background(), discord.Platform, thread)
	return err == nil && len(s.Turns) == 2
}
