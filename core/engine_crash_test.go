package core_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// attemptGen checks, at each provider call, that the engine has already
// recorded the attempt in the database, as a crash right after sending must
// not forget that money may have been spent.
type attemptGen struct {
	h        *harness
	attempts int // calls to make per Generate
	mu       sync.Mutex
	seen     []int // Turn.Attempts as stored when each call was "sent"
}

func (g *attemptGen) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	for n := 1; n <= g.attempts; n++ {
		if err := req.Attempt(n); err != nil {
			return core.Result{}, err
		}
		jobs, err := g.h.db.ActiveJobs(ctx)
		if err != nil || len(jobs) != 1 {
			return core.Result{}, err
		}
		s, err := g.h.db.Session(ctx, jobs[0].SessionID)
		if err != nil {
			return core.Result{}, err
		}
		g.mu.Lock()
		g.seen = append(g.seen, s.Turn(jobs[0].TurnID).Attempts)
		g.mu.Unlock()
	}
	return core.Result{Images: []core.Image{{Data: testPNG(7), MIME: "image/png"}}, Attempts: g.attempts}, nil
}

func TestEngineRecordsEachAttemptBeforeItIsSent(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	gen := &attemptGen{h: h, attempts: 3}
	h.close()
	h.gen = nil
	h.openWith(core.EngineConfig{}, gen)
	th := coretest.NewThread()
	q := h.send(th, msg("t", "a fox"))
	th.WaitTurns(t, 1)
	if want := []int{1, 2, 3}; !slices.Equal(gen.seen, want) {
		t.Errorf("attempts stored when each call went out = %v, want %v", gen.seen, want)
	}
	// A second run of the same session (a refinement) counts on.
	h.send(th, msg("t", "make it blue"))
	th.WaitTurns(t, 2)
	if s := h.session(q.SessionID); s.Turn(1).Attempts != 3 || s.Turn(2).Attempts != 3 {
		t.Errorf("stored attempts = %d, %d; want 3, 3", s.Turn(1).Attempts, s.Turn(2).Attempts)
	}
}

// resender is a coretest.Thread that also answers whether a text was posted.
type resender struct {
	*coretest.Thread
	shown []string // texts an earlier process posted
}

func (r *resender) Posted(_ context.Context, text string, _ time.Time) (bool, error) {
	return slices.Contains(r.shown, text), nil
}

func TestEnginePostsWhatACrashLeftUnposted(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	ctx := context.Background()
	// An earlier process finished turn 1 with two images and posted only
	// v1, failed turn 2 and posted its message, and failed turn 3 without
	// posting anything.
	var refs []core.ImageRef
	for i := range 2 {
		ref, err := h.images.Put(ctx, core.Image{Data: testPNG(100 + i), MIME: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	sess := &core.Session{ID: "crashed", Platform: "test", Thread: "t", CreatedBy: ana}
	if err := h.db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	_, err := h.db.UpdateSession(ctx, sess.ID, func(s *core.Session) error {
		s.Versions = []core.Version{{N: 1, Turn: 1, Image: refs[0]}, {N: 2, Turn: 1, Image: refs[1]}}
		s.Head = 1
		s.Turns = []core.Turn{
			{ID: 1, Kind: core.KindVariations, Action: core.ActionPrompt, User: ana, Prompt: "a fox", Status: core.StatusDone,
				Outputs: []int{1, 2}, Posting: true, Posted: []int{1}, Source: "m1"},
			{ID: 2, Action: core.ActionPrompt, User: ana, Status: core.StatusFailed, Error: "the first failure", Posting: true},
			{ID: 3, Action: core.ActionPrompt, User: ana, Status: core.StatusFailed, Error: "the second failure", Posting: true},
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	th := &resender{Thread: coretest.NewThread(), shown: []string{"❌ the first failure"}}
	n, err := h.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true })
	if err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want 1 session", n, err)
	}
	th.WaitTurns(t, 3)
	th.Lock()
	defer th.Unlock()
	if len(th.Posts) != 1 || th.Posts[0].Version != 2 || !th.Posts[0].Retry {
		t.Errorf("reposted images = %+v, want v2 alone, marked as a retry", th.Posts)
	}
	if want := []string{"❌ the second failure"}; !slices.Equal(th.Replies, want) {
		t.Errorf("replies = %q, want %q", th.Replies, want)
	}
	if h.gen.Calls.Load() != 0 {
		t.Errorf("reposting called the provider %d times", h.gen.Calls.Load())
	}
	s := h.session(sess.ID)
	for _, tr := range s.Turns {
		if tr.Posting {
			t.Errorf("turn %d still posting after resume", tr.ID)
		}
	}
	if jobs, _ := h.db.ActiveJobs(ctx); len(jobs) != 0 {
		t.Errorf("pending jobs after repost: %v", jobs)
	}
}

func TestEngineGivesUpOnATurnInterruptedTooOften(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	ctx := context.Background()
	sess := &core.Session{ID: "loop", Platform: "test", Thread: "t", CreatedBy: ana}
	if err := h.db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	_, err := h.db.UpdateSession(ctx, sess.ID, func(s *core.Session) error {
		s.Turns = []core.Turn{{ID: 1, Action: core.ActionPrompt, User: ana, Prompt: "a fox", Status: core.StatusRunning, Starts: 3, Attempts: 3}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	th := coretest.NewThread()
	if _, err := h.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true }); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)
	if h.gen.Calls.Load() != 0 {
		t.Errorf("a turn started %d times was sent to the provider again", 3)
	}
	s := h.session(sess.ID)
	if tr := s.Turn(1); tr.Status != core.StatusFailed || !strings.Contains(tr.Error, "interrupted 3 times") {
		t.Errorf("turn = %s %q, want failed, interrupted 3 times", tr.Status, tr.Error)
	}
}
