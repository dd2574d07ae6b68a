package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// The disk fills up while an image renders and another request waits in
// the thread. The thread is told once, both requests get ❌ instead of an
// hourglass forever, the status line goes, and once the disk has room a
// reply in the thread runs everything, each image uploaded once.
func TestStoreFullGivesUpOnceAndResumes(t *testing.T) {
	var fs *coretest.FailingStore
	gate := make(chan struct{})
	h := newHarness(t, options{
		gate:   gate,
		engine: core.EngineConfig{StoreRetry: 200 * time.Millisecond},
		store: func(db *storage.DB) *coretest.FailingStore {
			fs = coretest.NewFailingStore(db)
			return fs
		},
	})
	root := h.slash(ana, "C1", "a lighthouse")
	h.fake.WaitFor(t, "the first turn queued", func() bool { return h.gen.Calls.Load() == 1 })
	waiting, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it night", ThreadTS: root})
	h.deliver(envs...)
	h.fake.WaitFor(t, "the second turn recorded", func() bool { return h.engine.recorded.Load() == 2 })

	fs.SetFailing(true)
	gate <- struct{}{} // the first image is made but cannot be stored
	h.reacted("C1", root, reactFailed)
	h.reacted("C1", waiting, reactFailed)
	h.fake.WaitFor(t, "no status line", func() bool {
		for _, r := range h.fake.Replies("C1", root) {
			if strings.Contains(r.Text, "rendering") && !r.Deleted {
				return false
			}
		}
		return true
	})

	fs.SetFailing(false)
	h.gen.SetGate(nil)
	again, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "add stars", ThreadTS: root})
	h.deliver(envs...)
	h.reacted("C1", again, reactDone)
	h.settle()

	if ups := h.images(3); len(ups) != 3 {
		t.Errorf("%d images uploaded, want 3 (each turn once)", len(ups))
	}
	notes := 0
	for _, r := range h.fake.Replies("C1", root) {
		if strings.Contains(r.Text, "can't save its work") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("the thread was told %d times that Easel gave up on it, want once", notes)
	}
}
