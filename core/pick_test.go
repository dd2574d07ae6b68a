package core_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// pick returns a press of the pick button for version n under the grid
// named by version grid.
func pick(thread string, grid, n int) core.Message {
	return core.Message{Platform: "test", Thread: thread, User: ana, Action: core.ActionPick, Grid: grid, Version: n}
}

func TestVariationsPostOneGridAndAPickPostsTheCandidate(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	q := h.send(th, msg("g", "a fox --n 4"))
	th.WaitTurns(t, 1)

	th.Lock()
	posts := slices.Clone(th.Posts)
	th.Unlock()
	if len(posts) != 1 {
		t.Fatalf("%d posts for 4 images, want one grid", len(posts))
	}
	grid := posts[0]
	if grid.Version != 1 || !slices.Equal(grid.Candidates, []int{1, 2, 3, 4}) || !strings.Contains(grid.Caption, "preview — pick one") {
		t.Errorf("grid post: version %d candidates %v caption %q", grid.Version, grid.Candidates, grid.Caption)
	}
	if want := core.PickButtons([]int{1, 2, 3, 4}); !slices.Equal(grid.Buttons, want) {
		t.Errorf("grid buttons %+v, want %+v", grid.Buttons, want)
	}
	if grid.Path == "" || grid.Image.MIME == "" {
		t.Errorf("grid post has no stored path (%q) or no image", grid.Path)
	}
	s := h.session(q.SessionID)
	if tr := s.Turn(1); !tr.Grid || tr.Posting || !slices.Equal(tr.Posted, []int{1}) || len(s.Versions) != 4 {
		t.Errorf("turn after the grid: grid %v posting %v posted %v, %d versions", tr.Grid, tr.Posting, tr.Posted, len(s.Versions))
	}

	h.send(th, pick("g", 1, 3))
	th.WaitTurns(t, 2)
	th.Lock()
	picked := th.Posts[len(th.Posts)-1]
	th.Unlock()
	s = h.session(q.SessionID)
	if picked.Version != 3 || len(picked.Candidates) != 0 || !slices.Equal(picked.Buttons, core.Buttons) || !strings.HasPrefix(picked.Caption, "v3") {
		t.Errorf("picked post: version %d candidates %v caption %q buttons %v", picked.Version, picked.Candidates, picked.Caption, picked.Buttons)
	}
	if !bytes.Equal(picked.Image.Data, h.imageBytes(s.Version(3).Image)) {
		t.Error("the picked post is not the stored bytes of v3")
	}
	if tr := s.Turn(2); s.Head != 3 || tr.Kind != core.KindPick || tr.Posting || len(s.Versions) != 4 || h.gen.Calls.Load() != 1 {
		t.Errorf("after the pick: head v%d, turn %+v, %d versions, %d provider calls", s.Head, tr, len(s.Versions), h.gen.Calls.Load())
	}

	var turns strings.Builder
	if err := core.WriteTurns(&turns, s); err != nil || !strings.Contains(turns.String(), "pick by ana · done → v3 picked") {
		t.Errorf("the pick in the turns (%v):\n%s", err, turns.String())
	}

	h.send(th, msg("g", "make it blue"))
	th.WaitTurns(t, 3)
	if base := h.gen.Request(1).Base; base == nil || !bytes.Equal(base.Data, h.imageBytes(s.Version(3).Image)) {
		t.Error("the reply after the pick does not refine v3")
	}

	// Picking again, another candidate, moves head there.
	h.send(th, pick("g", 1, 2))
	th.WaitTurns(t, 4)
	if s := h.session(q.SessionID); s.Head != 2 {
		t.Errorf("head after a second pick = v%d, want v2", s.Head)
	}
}

func TestPickRefusesWhatIsNoCandidate(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	h.send(th, msg("f", "a fox --n 2"))
	th.WaitTurns(t, 1)
	h.send(th, msg("f", "make it blue"))
	th.WaitTurns(t, 2)
	bob := pick("f", 1, 2)
	bob.User = core.User{ID: "U2", Name: "bob"}
	cases := []struct {
		name string
		msg  core.Message
		kind core.ErrorKind
		says string
	}{
		{"a version of no grid", pick("f", 1, 3), core.Invalid, "v3 is not a candidate of this grid; pick one of v1 and v2"},
		{"a grid that is none", pick("f", 3, 3), core.Invalid, "v3 heads no grid"},
		{"the second cell as the grid", pick("f", 2, 2), core.Invalid, "v2 heads no grid"},
		{"a version that does not exist", pick("f", 1, 9), core.NotFound, "v9 does not exist"},
		{"no version", pick("f", 1, 0), core.Invalid, "v0 is not a candidate"},
		{"someone else", bob, core.Forbidden, "only ana"},
	}
	for _, c := range cases {
		_, err := h.engine.Handle(context.Background(), th, c.msg)
		if core.KindOf(err) != c.kind || err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want a %s error saying %q", c.name, err, c.kind, c.says)
		}
	}
	s := h.session(h.threadSession(t, "f"))
	if len(s.Turns) != 2 || s.Head != 3 {
		t.Errorf("refused picks changed the session: %d turns, head v%d", len(s.Turns), s.Head)
	}
	admin := pick("f", 1, 2)
	admin.User = core.User{ID: "U3", Name: "root", Admin: true}
	h.send(th, admin)
	th.WaitTurns(t, 3)
}

// threadSession returns the id of the session of a test thread.
func (h *harness) threadSession(t *testing.T, thread string) string {
	t.Helper()
	s, err := h.engine.Session(context.Background(), "test", thread)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func TestGridSurvivesARestart(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	q := h.send(th, msg("r", "a fox --n 3"))
	th.WaitTurns(t, 1)
	h.close()
	h.open(core.EngineConfig{})
	th2 := coretest.NewThread()
	if n, err := h.engine.Resume(context.Background(), func(*core.Session) (core.Thread, bool) { return th2, true }); err != nil || n != 0 {
		t.Fatalf("Resume = %d, %v; want nothing to resume", n, err)
	}
	h.send(th2, pick("r", 1, 3))
	th2.WaitTurns(t, 1)
	th2.Lock()
	defer th2.Unlock()
	if len(th2.Posts) != 1 || th2.Posts[0].Version != 3 {
		t.Fatalf("after a restart: posts %+v, want v3 alone", th2.Posts)
	}
	if s := h.session(q.SessionID); s.Head != 3 || !bytes.Equal(th2.Posts[0].Image.Data, h.imageBytes(s.Version(3).Image)) {
		t.Errorf("after a restart: head v%d, or the post is not v3's bytes", s.Head)
	}
}

func TestGridLeftUnpostedIsPostedOnce(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	ctx := context.Background()
	// An earlier process stored three candidates and recorded their turn
	// done, then stopped before the grid was posted.
	sess := &core.Session{ID: "cut", Platform: "test", Thread: "t", CreatedBy: ana}
	if err := h.db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	_, err := h.db.UpdateSession(ctx, sess.ID, func(s *core.Session) error {
		for i := range 3 {
			ref, err := h.images.Put(ctx, core.Image{Data: testPNG(200 + i), MIME: "image/png"})
			if err != nil {
				return err
			}
			s.Versions = append(s.Versions, core.Version{N: i + 1, Turn: 1, Image: ref})
		}
		s.Head = 1
		s.Turns = []core.Turn{{ID: 1, Kind: core.KindGenerate, Action: core.ActionPrompt, User: ana, Prompt: "a fox",
			Status: core.StatusDone, Outputs: []int{1, 2, 3}, Grid: true, Posting: true, Source: "m1"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	th := coretest.NewThread()
	if n, err := h.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true }); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want 1 session", n, err)
	}
	th.WaitTurns(t, 1)
	h.close()
	h.open(core.EngineConfig{})
	if n, err := h.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true }); err != nil || n != 0 {
		t.Fatalf("second Resume = %d, %v; want nothing left", n, err)
	}
	th.Lock()
	defer th.Unlock()
	if len(th.Posts) != 1 || !slices.Equal(th.Posts[0].Candidates, []int{1, 2, 3}) || !th.Posts[0].Retry {
		t.Errorf("reposted %+v, want one grid of v1–v3, marked as a retry", th.Posts)
	}
	if tr := h.session(sess.ID).Turn(1); tr.Posting || !slices.Equal(tr.Posted, []int{1}) {
		t.Errorf("turn after repost: posting %v posted %v", tr.Posting, tr.Posted)
	}
}

func TestMoreCandidatesThanAGridHoldsArePostedOneByOne(t *testing.T) {
	h := newHarness(t, core.EngineConfig{Limits: core.Limits{MaxN: 5, MaxPromptChars: 1000}})
	th := coretest.NewThread()
	q := h.send(th, msg("five", "a fox --n 5"))
	th.WaitTurns(t, 1)
	th.Lock()
	defer th.Unlock()
	if len(th.Posts) != 5 || len(th.Posts[0].Candidates) != 0 {
		t.Errorf("%d posts for 5 images, want each on its own", len(th.Posts))
	}
	if tr := h.session(q.SessionID).Turn(1); tr.Grid || tr.Posting {
		t.Errorf("turn of 5 images: grid %v posting %v", tr.Grid, tr.Posting)
	}
}
