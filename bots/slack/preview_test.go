package slack

import (
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// previews returns the preview uploads, and how many of them are deleted.
func (h *harness) previews() (all []slacktest.Upload, deleted int) {
	for _, u := range h.fake.Uploads() {
		if u.Title == "preview" {
			all = append(all, u)
			if u.Deleted {
				deleted++
			}
		}
	}
	return all, deleted
}

// shownFiles returns the files the thread's messages still show.
func (h *harness) shownFiles(channel, root string) []string {
	var files []string
	for _, m := range h.fake.Replies(channel, root) {
		if !m.Deleted {
			files = append(files, m.Files...)
		}
	}
	return files
}

// Once the final image is posted, the turn's preview goes, message and
// all: the thread holds one image per version.
func TestPreviewIsDeletedOnceTheImageIsPosted(t *testing.T) {
	h := newHarness(t, options{partials: 2})
	root := h.slash(ana, "C1", "a bridge")
	h.images(1)
	h.settle()
	h.fake.WaitFor(t, "the preview deleted", func() bool {
		all, deleted := h.previews()
		return len(all) == 1 && deleted == 1
	})
	if files := h.shownFiles("C1", root); len(files) != 1 {
		t.Errorf("the thread shows %d files, want the one image", len(files))
	}
	for _, r := range h.fake.Replies("C1", root) {
		if strings.Contains(r.Text, "first look") && !r.Deleted {
			t.Error("the preview's message is left in the thread")
		}
	}
}

// A preview an earlier process could not delete (it stopped first) is
// deleted by the next process when a turn in the thread ends.
func TestPreviewLeftByAnEarlierProcessIsDeleted(t *testing.T) {
	h := newHarness(t, options{partials: 1})
	h.fake.Fail("files.delete", "cant_delete_file")
	root := h.slash(ana, "C1", "a bridge")
	h.images(1)
	h.settle()
	if _, deleted := h.previews(); deleted != 0 {
		t.Fatalf("%d previews deleted though files.delete failed", deleted)
	}

	// A restart: nothing is remembered of the thread. The engine's worker
	// for the session may not have exited yet and would run the next turn
	// with the thread it holds, so that one forgets its sweep too.
	old := h.bot.threads
	old.mu.Lock()
	for _, th := range old.threads {
		th.mu.Lock()
		th.swept = false
		th.mu.Unlock()
	}
	old.mu.Unlock()
	if n := len(h.fake.Calls("conversations.replies")); n != 0 {
		t.Errorf("the thread the command started was searched for earlier previews %d times, want none", n)
	}
	h.bot.threads = newThreadCache()
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "in fog", ThreadTS: root})
	h.deliver(envs...)
	h.images(2)
	h.settle()
	// The second turn shows a preview of its own unless its image came
	// first (on a loaded machine); either way none is left.
	h.fake.WaitFor(t, "every preview deleted", func() bool {
		all, deleted := h.previews()
		return len(all) >= 1 && deleted == len(all)
	})
	if files := h.shownFiles("C1", root); len(files) != 2 {
		t.Errorf("the thread shows %d files, want the two images", len(files))
	}
}
