package core_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

// newFailingHarness is a harness whose engine writes through a store that
// fails on demand, as a full disk does.
func newFailingHarness(t *testing.T, cfg core.EngineConfig) (*harness, *coretest.FailingStore) {
	t.Helper()
	var fs *coretest.FailingStore
	h := &harness{t: t, dir: t.TempDir(), gen: streamingGen(), logs: &bytes.Buffer{}}
	h.fail = func(db *storage.DB) *coretest.FailingStore {
		fs = coretest.NewFailingStore(db)
		return fs
	}
	h.open(cfg)
	t.Cleanup(func() { h.close() })
	return h, fs
}

// stalls counts the replies that say Easel gave up on a thread.
func stalls(th *coretest.Thread) int {
	n := 0
	for _, r := range th.Replies {
		if strings.Contains(r, "can't save its work") {
			n++
		}
	}
	return n
}

// The disk fills up just after an image is posted, so the post cannot be
// recorded. The engine must retry for a bounded time, then give up once with
// one message, not post the image again (a turn left "posting" used to be
// picked up at once, forever), and when the store works again take the
// session up where it was, still without a second post.
func TestStoreFullWhilePostingPostsOnceThenGivesUp(t *testing.T) {
	h, fs := newFailingHarness(t, core.EngineConfig{StoreRetry: 300 * time.Millisecond})
	th := coretest.NewThread()
	th.OnPost = func(core.ImagePost) { fs.SetFailing(true) }
	q := h.send(th, msg("t", "a red fox"))
	th.WaitFor(t, "the give-up message", func(th *coretest.Thread) bool { return stalls(th) == 1 })
	th.WaitTurns(t, 1)

	// Recovered: the next message takes the session up again.
	fs.SetFailing(false)
	th.Lock()
	th.OnPost = nil
	th.Unlock()
	h.send(th, msg("t", "make it blue"))
	th.WaitFor(t, "v2", func(th *coretest.Thread) bool { return len(th.Posts) >= 2 && len(th.Finished) >= 3 })
	s := h.session(q.SessionID)
	h.close()

	if got := []int{th.Posts[0].Version, th.Posts[1].Version}; len(th.Posts) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("posted versions %v (%d posts), want v1 then v2, each once", got, len(th.Posts))
	}
	if n := stalls(th); n != 1 {
		t.Errorf("%d give-up messages, want 1: %q", n, th.Replies)
	}
	if n := fs.Failed(); n > 10 {
		t.Errorf("%d failed writes in a 300ms retry window: the engine does not back off", n)
	}
	if t1 := s.Turn(1); t1.Posting || len(t1.Posted) != 1 || s.Turn(2).Status != core.StatusDone {
		t.Errorf("turn 1 posting %v posted %v, turn 2 %s: the earlier post was not recorded on recovery", t1.Posting, t1.Posted, s.Turn(2).Status)
	}
	if n := strings.Count(h.logs.String(), "\n"); n > 20 {
		t.Errorf("%d log lines for one failing post; want a handful:\n%s", n, h.logs)
	}
}

// The undo note could be posted thousands of times a second when recording
// it failed. It is posted once.
func TestStoreFullAfterUndoNotePostsItOnce(t *testing.T) {
	h, fs := newFailingHarness(t, core.EngineConfig{StoreRetry: 200 * time.Millisecond})
	th := coretest.NewThread()
	h.send(th, msg("t", "a red fox"))
	th.WaitTurns(t, 1)
	h.send(th, msg("t", "make it blue"))
	th.WaitTurns(t, 2)
	th.Lock()
	th.OnReply = func(text string) {
		if strings.HasPrefix(text, "↩️") {
			fs.SetFailing(true)
		}
	}
	th.Unlock()
	h.send(th, core.Message{Platform: "test", Thread: "t", User: ana, Action: core.ActionUndo})
	th.WaitFor(t, "the give-up message", func(th *coretest.Thread) bool { return stalls(th) == 1 })
	fs.SetFailing(false)
	h.send(th, msg("t", "make it green"))
	th.WaitFor(t, "v3", func(th *coretest.Thread) bool { return len(th.Posts) == 3 })
	h.close()

	notes := 0
	for _, r := range th.Replies {
		if strings.HasPrefix(r, "↩️") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("the undo note was posted %d times, want once: %q", notes, th.Replies)
	}
}

// A store that fails while a turn renders, with two more queued behind it:
// everyone waiting is told the turns ended (a console waiting for them must
// not hang), their slots are free again, and once the store works the
// session runs all of them.
func TestStoreFullWhileRenderingReleasesEveryTurn(t *testing.T) {
	h, fs := newFailingHarness(t, core.EngineConfig{StoreRetry: 200 * time.Millisecond, MaxPerUser: 3})
	h.gen.SetGate(make(chan struct{}))
	th := coretest.NewThread()
	for i, text := range []string{"a red fox", "make it blue", "make it green"} {
		m := msg("t", text)
		m.Source = []string{"m1", "m2", "m3"}[i]
		h.send(th, m)
	}
	waitCalls(t, h.gen, 1)
	fs.SetFailing(true)
	h.gen.Gate() <- struct{}{} // the image is made, but cannot be stored
	th.WaitFor(t, "three ended turns", func(th *coretest.Thread) bool { return len(th.Finished) == 3 })

	// Nothing is held any more: the user is told the store is failing, not
	// that they have three requests in progress.
	_, err := h.engine.Handle(context.Background(), th, msg("t", "make it gold"))
	if core.KindOf(err) != core.Unavailable || !strings.Contains(core.UserMessage(err, "x"), "can't save new requests") {
		t.Fatalf("a message while the store fails: %v, want Unavailable", err)
	}
	fs.SetFailing(false)
	close(h.gen.Gate())
	q := h.send(th, msg("t", "make it gold"))
	th.WaitFor(t, "all four turns", func(th *coretest.Thread) bool { return len(th.Finished) == 7 })
	s := h.session(q.SessionID)
	h.close()

	if n := stalls(th); n != 1 {
		t.Errorf("%d give-up messages, want 1: %q", n, th.Replies)
	}
	for i, ok := range th.Finished[:3] {
		if ok {
			t.Errorf("turn %d was told finished successfully when the engine gave up on it", i+1)
		}
	}
	if len(th.Posts) != 4 {
		t.Errorf("%d images posted, want 4", len(th.Posts))
	}
	for _, tn := range s.Turns {
		if tn.Status != core.StatusDone {
			t.Errorf("turn %d %s after recovery, want done", tn.ID, tn.Status)
		}
	}
}

// Stopping must not wait for a failing store: a turn retrying a write is
// abandoned as soon as the grace period ends, and stays recorded for the
// next start.
func TestCloseDoesNotWaitForAFailingStore(t *testing.T) {
	h, fs := newFailingHarness(t, core.EngineConfig{StoreRetry: time.Hour})
	h.gen.SetGate(make(chan struct{}))
	th := coretest.NewThread()
	q := h.send(th, msg("t", "a red fox"))
	waitCalls(t, h.gen, 1)
	fs.SetFailing(true)
	close(h.gen.Gate())
	waitFailed(t, fs, 2) // retrying

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.engine.Close(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Close reported every turn finished")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting for a failing store 10s after its grace period ended")
	}
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	h.engine = nil
	h.open(core.EngineConfig{})
	if s := h.session(q.SessionID); s.Turn(1).Status != core.StatusRunning {
		t.Errorf("the abandoned turn is %s, want still running, to resume", s.Turn(1).Status)
	}
}

func waitCalls(t *testing.T, g *coretest.Generator, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.Calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the provider was called %d times, want %d", g.Calls.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFailed(t *testing.T, fs *coretest.FailingStore, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for fs.Failed() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed writes, want %d", fs.Failed(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
