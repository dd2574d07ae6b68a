package core_test

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// removingThread is a Thread that can take posts down: it records which.
type removingThread struct {
	*coretest.Thread
	removed []int
}

func (r *removingThread) RemoveImage(_ context.Context, _ string, n int) error {
	r.Lock()
	defer r.Unlock()
	r.removed = append(r.removed, n)
	return nil
}

func (h *harness) delete(th core.Thread, thread string, by core.User, n int) error {
	return h.engine.Delete(context.Background(), th, core.Message{Platform: "test", Thread: thread, User: by, Version: n})
}

// Deleting head: the version is marked, its post taken down, head moves
// to its parent, and the deleted version can no longer be used; deleting
// it again, or someone else's, changes nothing.
func TestDeleteVersion(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := &removingThread{Thread: coretest.NewThread()}
	q := h.send(th, msg("t1", "a red fox"))
	th.WaitTurns(t, 1)
	h.send(th, msg("t1", "make it blue"))
	th.WaitTurns(t, 2)

	if err := h.delete(th, "t1", bob, 2); core.KindOf(err) != core.Forbidden {
		t.Fatalf("bob's delete: %v", err)
	}
	if err := h.delete(th, "t1", ana, 2); err != nil {
		t.Fatal(err)
	}
	s := h.session(q.SessionID)
	if v := s.Version(2); v.Deleted == nil || v.Deleted.By.ID != ana.ID || s.Head != 1 || len(s.Versions) != 2 {
		t.Fatalf("after the delete: head v%d, v2 %+v", s.Head, v)
	}
	if len(th.removed) != 1 || th.removed[0] != 2 || th.Replies[len(th.Replies)-1] != "🗑️ v2 deleted by ana; replies now refine v1" {
		t.Errorf("removed %v, replies %q", th.removed, th.Replies)
	}
	if err := h.delete(th, "t1", ana, 2); core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "deleted already") {
		t.Errorf("second delete: %v", err)
	}
	for _, m := range []core.Message{
		{Platform: "test", Thread: "t1", User: ana, Action: core.ActionRegenerate, Version: 2},
		{Platform: "test", Thread: "t1", User: ana, Action: core.ActionHighQuality, Version: 2},
		{Platform: "test", Thread: "t1", User: ana, Text: "add a hat", Version: 2},
	} {
		if _, err := h.engine.Handle(context.Background(), th, m); core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "v2 was deleted") {
			t.Errorf("%s on deleted v2: %v", m.Action, err)
		}
	}
	// A reply refines v1, the new head.
	h.send(th, msg("t1", "make it green"))
	th.WaitTurns(t, 3)
	if s := h.session(q.SessionID); s.Head != 3 || s.Version(3).Parent != 1 {
		t.Errorf("the next reply made v%d from v%d", s.Head, s.Version(s.Head).Parent)
	}
}

// A queued turn that would refine a version deleted meanwhile fails with
// a clear message and no provider call.
func TestDeleteUnderAQueuedRefinement(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	h.send(th, msg("t1", "a red fox"))
	th.WaitTurns(t, 1)
	gate := make(chan struct{})
	h.gen.SetGate(gate)
	h.send(th, msg("t1", "make it blue"))
	waitCalls(t, h.gen, 2)
	branch := msg("t1", "add a hat")
	branch.Version = 1
	h.send(th, branch)
	if err := h.delete(th, "t1", ana, 1); err != nil {
		t.Fatal(err)
	}
	close(gate)
	th.WaitTurns(t, 3)
	if n := h.gen.Calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2", n)
	}
	if last := th.Replies[len(th.Replies)-1]; !strings.Contains(last, "v1 was deleted") {
		t.Errorf("the queued branch ended with %q", last)
	}
}

// A deleted version's image bytes leave the image store unless another
// version uses the same bytes.
func TestDeleteRemovesUnsharedImages(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	th.WaitTurns(t, 1)
	h.send(th, msg("t1", "make it blue"))
	th.WaitTurns(t, 2)
	s := h.session(q.SessionID)
	v1, v2 := s.Version(1).Image, s.Version(2).Image

	if err := h.delete(th, "t1", ana, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := h.images.Get(context.Background(), v2); core.KindOf(err) != core.NotFound {
		t.Errorf("v2's unshared bytes after its deletion: %v", err)
	}
	// v3 in another session has v1's bytes: deleting v1 keeps them.
	h.gen.SetOutput(func(int) []byte { return h.imageBytes(v1) })
	h.send(th, msg("t2", "the same fox"))
	th.WaitTurns(t, 3)
	if err := h.delete(th, "t1", ana, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.images.Get(context.Background(), v1); err != nil {
		t.Errorf("bytes another session uses were removed: %v", err)
	}
}
