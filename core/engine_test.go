package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// testPNG returns a valid PNG that differs for every seed.
func testPNG(seed int) []byte { return coretest.PNG(seed) }

type harness struct {
	t      *testing.T
	dir    string
	db     *storage.DB
	gen    *coretest.Generator
	engine *core.Engine
	logs   *bytes.Buffer
	images *imagedir.Dir
	// fail, if set, wraps the stores the engine is given.
	fail func(*storage.DB) *coretest.FailingStore
	// noStyleStore leaves the engine without a store for styles set in
	// chat.
	noStyleStore bool
}

func newHarness(t *testing.T, cfg core.EngineConfig) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), gen: streamingGen(), logs: &bytes.Buffer{}}
	h.open(cfg)
	t.Cleanup(func() { h.close() })
	return h
}

func (h *harness) open(cfg core.EngineConfig) {
	h.t.Helper()
	h.openWith(cfg, h.gen)
}

// openWith opens the store and an engine whose "fake" provider is gen.
func (h *harness) openWith(cfg core.EngineConfig, gen core.Generator) {
	h.t.Helper()
	db, err := storage.Open(context.Background(), h.dir, storage.Options{Timeout: time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	if cfg.DefaultProvider == "" {
		cfg.DefaultProvider = "fake"
	}
	if cfg.Limits.MaxN == 0 {
		cfg.Limits = core.Limits{MaxN: 4, MaxPromptChars: 32000}
	}
	log := slog.New(slog.NewTextHandler(&syncWriter{w: h.logs}, nil))
	h.images = coretest.ImageDir(h.t, h.dir)
	var store core.SessionStore = db
	var images core.ImageStore = h.images
	if cfg.StyleStore == nil && !h.noStyleStore {
		cfg.StyleStore = db
	}
	if h.fail != nil {
		fs := h.fail(db)
		store, images = fs, fs.Images(images)
	}
	e, err := core.NewEngine(cfg, store, images, map[string]core.Generator{"fake": gen}, log)
	if err != nil {
		h.t.Fatal(err)
	}
	h.db, h.engine = db, e
}

func (h *harness) close() {
	if h.engine == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.engine.Close(ctx); err != nil {
		h.t.Errorf("engine close: %v", err)
	}
	if err := h.db.Close(); err != nil {
		h.t.Errorf("db close: %v", err)
	}
	h.engine = nil
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

var ana = core.User{ID: "U1", Name: "ana"}

func msg(thread, text string) core.Message {
	return core.Message{Platform: "test", Thread: thread, User: ana, Text: text}
}

func (h *harness) send(th core.Thread, m core.Message) core.Queued {
	h.t.Helper()
	q, err := h.engine.Handle(context.Background(), th, m)
	if err != nil {
		h.t.Fatalf("Handle(%q): %v", m.Text, err)
	}
	return q
}

func (h *harness) session(id string) *core.Session {
	h.t.Helper()
	s, err := h.db.Session(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) imageBytes(ref core.ImageRef) []byte {
	h.t.Helper()
	img, err := h.images.Get(context.Background(), ref)
	if err != nil {
		h.t.Fatal(err)
	}
	return img.Data
}

func TestEngineTurnKinds(t *testing.T) {
	h := newHarness(t, core.EngineConfig{Variations: 2})
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox --ar 16:9"))
	th.WaitTurns(t, 1)
	h.send(th, msg("t1", "make it blue"))
	th.WaitTurns(t, 2)
	h.send(th, core.Message{Platform: "test", Thread: "t1", User: ana, Action: core.ActionUndo})
	th.WaitTurns(t, 3)
	h.send(th, msg("t1", "make it green --quality low"))
	th.WaitTurns(t, 4)

	s := h.session(q.SessionID)
	if len(s.Versions) != 3 || s.Version(2).Parent != 1 || s.Version(3).Parent != 1 || s.Head != 3 {
		t.Fatalf("tree after generate, refine, undo, refine: head v%d, versions %+v", s.Head, s.Versions)
	}
	if s.Turn(3).Kind != core.KindUndo || s.Turn(3).Status != core.StatusDone || h.gen.Calls.Load() != 3 {
		t.Errorf("undo turn %+v, provider calls %d (undo must not call the provider)", s.Turn(3), h.gen.Calls.Load())
	}
	// Refinement: previous image as input, original request as context, flags inherited.
	refine := h.gen.Request(1)
	if refine.Kind != core.KindRefine || refine.Base == nil || !bytes.Equal(refine.Base.Data, h.imageBytes(s.Version(1).Image)) {
		t.Errorf("refine request: kind %s, base given %v", refine.Kind, refine.Base != nil)
	}
	if len(refine.History) != 1 || refine.History[0] != "a red fox" || refine.Flags.Size != "1360x768" {
		t.Errorf("refine history %q flags %+v", refine.History, refine.Flags)
	}
	if p := refine.FullPrompt(); !strings.Contains(p, "a red fox") || !strings.Contains(p, "make it blue") {
		t.Errorf("refine prompt lacks context: %q", p)
	}
	green := h.gen.Request(2)
	if green.Flags.Quality != "low" || !bytes.Equal(green.Base.Data, h.imageBytes(s.Version(1).Image)) {
		t.Errorf("refine after undo: quality %q, base is v1: %v", green.Flags.Quality, bytes.Equal(green.Base.Data, h.imageBytes(s.Version(1).Image)))
	}

	// Regenerate v3: a sibling of v3 from the same request.
	h.send(th, core.Message{Platform: "test", Thread: "t1", User: ana, Action: core.ActionRegenerate})
	th.WaitTurns(t, 5)
	// Variations: two more siblings.
	h.send(th, core.Message{Platform: "test", Thread: "t1", User: ana, Action: core.ActionVariations})
	th.WaitTurns(t, 6)
	// High quality of head.
	h.send(th, core.Message{Platform: "test", Thread: "t1", User: ana, Action: core.ActionHighQuality})
	th.WaitTurns(t, 7)
	// Branch: refine v2, an older version.
	b := msg("t1", "add a hat")
	b.Version = 2
	h.send(th, b)
	th.WaitTurns(t, 8)

	s = h.session(q.SessionID)
	want := []struct{ parent, turn int }{{0, 1}, {1, 2}, {1, 4}, {1, 5}, {1, 6}, {1, 6}, {5, 7}, {2, 8}}
	if len(s.Versions) != len(want) {
		t.Fatalf("got %d versions, want %d: %+v", len(s.Versions), len(want), s.Versions)
	}
	for i, w := range want {
		if v := s.Versions[i]; v.Parent != w.parent || v.Turn != w.turn {
			t.Errorf("v%d: parent v%d turn %d, want parent v%d turn %d", v.N, v.Parent, v.Turn, w.parent, w.turn)
		}
	}
	kinds := []core.TurnKind{core.KindGenerate, core.KindRefine, core.KindUndo, core.KindRefine, core.KindRegenerate, core.KindVariations, core.KindHighQuality, core.KindBranch}
	for i, k := range kinds {
		if tk := s.Turns[i].Kind; tk != k || s.Turns[i].Status != core.StatusDone {
			t.Errorf("turn %d: kind %s status %s, want %s done", i+1, tk, s.Turns[i].Status, k)
		}
	}
	regen := h.gen.Request(3)
	if regen.Prompt != "make it green" || regen.N != 1 || !bytes.Equal(regen.Base.Data, h.imageBytes(s.Version(1).Image)) {
		t.Errorf("regenerate request: prompt %q n %d", regen.Prompt, regen.N)
	}
	if vary := h.gen.Request(4); vary.Kind != core.KindVariations || vary.N != 2 {
		t.Errorf("variations request: kind %s n %d", vary.Kind, vary.N)
	}
	hq := h.gen.Request(5)
	if hq.Kind != core.KindHighQuality || hq.Flags.Quality != "high" || hq.Flags.Size != "64x64" || !bytes.Equal(hq.Base.Data, h.imageBytes(s.Version(5).Image)) {
		t.Errorf("high quality request: kind %s flags %+v", hq.Kind, hq.Flags)
	}
	branch := h.gen.Request(6)
	if branch.Kind != core.KindBranch || !bytes.Equal(branch.Base.Data, h.imageBytes(s.Version(2).Image)) || len(branch.History) != 2 {
		t.Errorf("branch request: kind %s history %q", branch.Kind, branch.History)
	}
	if s.Head != 8 {
		t.Errorf("head = v%d after branch, want v8", s.Head)
	}
	// Each image was posted once, with buttons and a caption naming its
	// version; the two variations as one grid, named by the first.
	th.Lock()
	defer th.Unlock()
	if len(th.Posts) != 7 {
		t.Fatalf("%d images posted, want 7", len(th.Posts))
	}
	if th.Previews != 7 {
		t.Errorf("%d partial previews shown, want one per provider call (7)", th.Previews)
	}
	for i, p := range th.Posts {
		want := i + 1
		if i > 4 {
			want++
		}
		switch {
		case want == 5:
			if p.Version != 5 || !slices.Equal(p.Candidates, []int{5, 6}) || len(p.Buttons) != 2 || !strings.HasPrefix(p.Caption, "👀 preview — pick one: 1 = v5, 2 = v6") {
				t.Errorf("grid post %d: version %d candidates %v caption %q buttons %d", i, p.Version, p.Candidates, p.Caption, len(p.Buttons))
			}
		case p.Version != want || len(p.Buttons) != 4 || !strings.HasPrefix(p.Caption, fmt.Sprintf("v%d", want)) || p.SessionID != s.ID:
			t.Errorf("post %d: version %d caption %q buttons %d", i, p.Version, p.Caption, len(p.Buttons))
		}
	}
	if s.Turn(1).CostUSD != 0.01 || s.Turn(1).Model != "fake-1" || s.Turn(1).Usage.OutputTokens != 100 {
		t.Errorf("turn 1 usage not recorded: %+v", s.Turn(1))
	}
}

func TestEngineErrors(t *testing.T) {
	classes := []struct {
		err  error
		want string
	}{
		{core.Errorf(core.Refused, "declined by safety"), "❌ declined by safety"},
		{core.Errorf(core.Quota, "out of credits"), "❌ out of credits"},
		{core.Errorf(core.RateLimited, "slow down"), "❌ slow down"},
		{core.Errorf(core.Unavailable, "provider down"), "❌ provider down"},
		{errors.New("secret internal detail"), "❌ something went wrong on our side (ref "},
		{context.DeadlineExceeded, "❌ the image took longer than"},
	}
	for i, c := range classes {
		h := newHarness(t, core.EngineConfig{})
		h.gen.Fail(c.err)
		th := coretest.NewThread()
		q := h.send(th, msg("t", "a fox"))
		th.WaitTurns(t, 1)
		th.Lock()
		if len(th.Replies) != 1 || !strings.HasPrefix(th.Replies[0], c.want) || th.Finished[0] {
			t.Errorf("class %d: replies %q, want prefix %q", i, th.Replies, c.want)
		}
		if strings.Contains(strings.Join(th.Replies, ""), "secret internal detail") {
			t.Errorf("internal detail shown to the user: %q", th.Replies)
		}
		th.Unlock()
		turn := h.session(q.SessionID).Turn(1)
		if turn.Status != core.StatusFailed || turn.Error == "" || turn.Attempts != 2 {
			t.Errorf("class %d: turn %+v not recorded as failed", i, turn)
		}
		if core.KindOf(c.err) == core.Internal && !errors.Is(c.err, context.DeadlineExceeded) {
			if turn.ErrorRef == "" || !strings.Contains(h.logs.String(), turn.ErrorRef) || !strings.Contains(h.logs.String(), "secret internal detail") {
				t.Errorf("internal error not logged under its ref %q: %s", turn.ErrorRef, h.logs)
			}
		}
		// The session still works after a failure.
		h.send(th, msg("t", "a fox again"))
		th.WaitTurns(t, 2)
		if s := h.session(q.SessionID); s.Head != 1 || s.Turn(2).Kind != core.KindGenerate {
			t.Errorf("class %d: after a failure the next prompt should generate v1: head %d", i, s.Head)
		}
		h.close()
	}
}

func TestEngineRejectsBadInputBeforeRecording(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	ctx := context.Background()
	for _, text := range []string{"", "fox --n 99", "fox --ar 1:9", "fox --bogus", strings.Repeat("a", 40000), "fox --provider nope"} {
		if _, err := h.engine.Handle(ctx, th, msg("t", text)); core.KindOf(err) != core.Invalid {
			t.Errorf("Handle(%.20q) = %v, want an invalid-input error", text, err)
		}
	}
	if _, err := h.engine.Handle(ctx, th, core.Message{Platform: "test", Thread: "t", User: ana, Action: core.ActionUndo}); core.KindOf(err) != core.NotFound {
		t.Errorf("undo in a thread without a session = %v, want not found", err)
	}
	if _, err := h.db.SessionByThread(ctx, "test", "t"); core.KindOf(err) != core.NotFound {
		t.Errorf("bad input created a session: %v", err)
	}
	if h.gen.Calls.Load() != 0 {
		t.Errorf("bad input reached the provider")
	}

	// Undo with nothing to undo, and buttons pressed by someone else.
	q := h.send(th, msg("t", "a fox"))
	th.WaitTurns(t, 1)
	if _, err := h.engine.Handle(ctx, th, core.Message{Platform: "test", Thread: "t", User: core.User{ID: "U2", Name: "bo"}, Action: core.ActionRegenerate, SessionID: q.SessionID, Version: 1}); core.KindOf(err) != core.Forbidden || !strings.Contains(err.Error(), "only ana") {
		t.Errorf("button pressed by another user = %v, want forbidden naming ana", err)
	}
	if _, err := h.engine.Handle(ctx, th, core.Message{Platform: "test", Thread: "t", User: core.User{ID: "U9", Admin: true}, Action: core.ActionRegenerate, Version: 1}); err != nil {
		t.Errorf("admin pressing a button: %v", err)
	}
	th.WaitTurns(t, 2)
	if _, err := h.engine.Handle(ctx, th, core.Message{Platform: "test", Thread: "t", User: ana, Action: core.ActionHighQuality, Version: 7}); core.KindOf(err) != core.NotFound {
		t.Errorf("button on a missing version = %v, want not found", err)
	}
	h.send(th, core.Message{Platform: "test", Thread: "t", User: ana, Action: core.ActionUndo, Version: 1})
	th.WaitTurns(t, 3)
	th.Lock()
	defer th.Unlock()
	if last := th.Replies[len(th.Replies)-1]; !strings.Contains(last, "nothing to undo") {
		t.Errorf("undo of the first image replied %q", last)
	}
}

func TestEngineOrdersTurnsInASession(t *testing.T) {
	h := newHarness(t, core.EngineConfig{MaxPerUser: 20, MaxQueue: 20, MaxConcurrent: 4})
	th := coretest.NewThread()
	q := h.send(th, msg("t", "a fox"))
	th.WaitTurns(t, 1)

	h.gen.SetGate(make(chan struct{}))
	const n = 8
	var wg sync.WaitGroup
	positions := make(chan int, n)
	for i := range n {
		wg.Go(func() {
			positions <- h.send(th, msg("t", fmt.Sprintf("change %d", i))).Position
		})
	}
	wg.Wait()
	close(positions)
	seen := map[int]bool{}
	for p := range positions {
		seen[p] = true
	}
	for p := range n {
		if !seen[p] {
			t.Errorf("no message was told queue position %d: %v", p, seen)
		}
	}
	for range n {
		h.gen.Gate() <- struct{}{}
	}
	th.WaitTurns(t, n+1)

	s := h.session(q.SessionID)
	for i := 2; i <= n+1; i++ {
		turn := s.Turn(i)
		if turn.Base != i-1 || turn.Outputs[0] != i || s.Version(i).Parent != i-1 {
			t.Errorf("turn %d refined v%d into v%d, want v%d into v%d", i, turn.Base, turn.Outputs[0], i-1, i)
		}
		if turn.StartedAt.Before(s.Turn(i - 1).FinishedAt) {
			t.Errorf("turn %d started before turn %d finished", i, i-1)
		}
	}
	if peak := h.gen.Peak.Load(); peak != 1 {
		t.Errorf("%d provider calls of one session ran at once, want 1", peak)
	}
}

func TestEngineLimits(t *testing.T) {
	h := newHarness(t, core.EngineConfig{MaxConcurrent: 2, MaxPerUser: 2})
	h.gen.SetGate(make(chan struct{}))
	ctx := context.Background()
	threads := make([]*coretest.Thread, 6)
	for i := range threads {
		threads[i] = coretest.NewThread()
		user := core.User{ID: fmt.Sprintf("W%d", i)}
		if _, err := h.engine.Handle(ctx, threads[i], core.Message{Platform: "test", Thread: fmt.Sprint(i), User: user, Text: "fox"}); err != nil {
			t.Fatal(err)
		}
	}
	// Per-user cap: a user with two in flight is told to wait; nothing is recorded.
	for range 2 {
		if _, err := h.engine.Handle(ctx, threads[0], core.Message{Platform: "test", Thread: "x", User: ana, Text: "fox"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.engine.Handle(ctx, threads[0], core.Message{Platform: "test", Thread: "y", User: ana, Text: "fox"}); core.KindOf(err) != core.Busy {
		t.Errorf("third request from a user with two in flight = %v, want busy", err)
	}
	if _, err := h.db.SessionByThread(ctx, "test", "y"); core.KindOf(err) != core.NotFound {
		t.Errorf("a refused request created a session")
	}
	// Global cap: waiting turns are told so.
	threads[5].WaitFor(t, "a waiting status", func(ft *coretest.Thread) bool {
		return len(ft.Statuses) > 0 && strings.Contains(strings.Join(ft.Statuses, "|"), "waiting for a free renderer")
	})
	close(h.gen.Gate())
	for _, th := range threads {
		th.WaitTurns(t, 1)
	}
	if peak := h.gen.Peak.Load(); peak > 2 {
		t.Errorf("%d provider calls ran at once, want at most 2", peak)
	}
	// Once finished, the user may ask again.
	th := coretest.NewThread()
	h.send(th, core.Message{Platform: "test", Thread: "z", User: core.User{ID: "W0"}, Text: "fox"})
	th.WaitTurns(t, 1)
}

func TestEngineResumesAfterRestart(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	h.gen.SetGate(make(chan struct{}))
	th := coretest.NewThread()
	q := h.send(th, msg("t", "a fox"))
	h.send(th, msg("t", "make it blue"))
	// Wait until the first turn is running, then stop without letting it finish.
	for h.gen.Calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.engine.Close(ctx); err == nil {
		t.Error("Close with an expired context reported that every turn finished")
	}
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	h.engine = nil

	h.gen = streamingGen()
	h.open(core.EngineConfig{})
	s := h.session(q.SessionID)
	if len(s.Turns) != 2 || !s.Turns[0].Status.Active() || !s.Turns[1].Status.Active() {
		t.Fatalf("after an interrupted stop the turns should still be active: %+v", s.Turns)
	}
	th2 := coretest.NewThread()
	n, err := h.engine.Resume(context.Background(), func(s *core.Session) (core.Thread, bool) { return th2, true })
	if err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want 1 session", n, err)
	}
	th2.WaitTurns(t, 2)
	s = h.session(q.SessionID)
	if s.Head != 2 || s.Version(2).Parent != 1 || s.Turn(2).Kind != core.KindRefine {
		t.Errorf("resumed turns: head v%d, versions %+v", s.Head, s.Versions)
	}
	if jobs, _ := h.db.ActiveJobs(context.Background()); len(jobs) != 0 {
		t.Errorf("active jobs left after resume: %v", jobs)
	}
}

func TestEngineAttachmentsAndNewSession(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	th := coretest.NewThread()
	m := msg("t", "put this logo on a mug")
	m.Inputs = []core.Image{{Data: testPNG(999), MIME: "image/png", Name: "logo.png"}}
	q1 := h.send(th, m)
	th.WaitTurns(t, 1)
	req := h.gen.Request(0)
	if len(req.Inputs) != 1 || !bytes.Equal(req.Inputs[0].Data, testPNG(999)) || req.Base != nil {
		t.Errorf("generate with an attachment: %d inputs, base %v", len(req.Inputs), req.Base != nil)
	}
	if turn := h.session(q1.SessionID).Turn(1); len(turn.Inputs) != 1 || turn.Inputs[0].Name != "logo.png" {
		t.Errorf("attachment not recorded: %+v", turn.Inputs)
	}
	m = msg("t", "a new idea")
	m.NewSession = true
	q2 := h.send(th, m)
	th.WaitTurns(t, 2)
	if q2.SessionID == q1.SessionID || h.gen.Request(1).Kind != core.KindGenerate {
		t.Errorf("NewSession did not start a fresh session")
	}
	if cur, _ := h.engine.Session(context.Background(), "test", "t"); cur.ID != q2.SessionID {
		t.Errorf("thread bound to %s, want the new session %s", cur.ID, q2.SessionID)
	}
}

// streamingGen returns a fake provider that streams one partial image per
// call, as the OpenAI provider does.
func streamingGen() *coretest.Generator {
	g := &coretest.Generator{}
	g.SetPartials(1)
	return g
}

func TestPostsCarryTheSessionLink(t *testing.T) {
	h := newHarness(t, core.EngineConfig{SessionLink: func(id string) string { return "https://easel.example.com/gallery/s/" + id + "?sig=x" }})
	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a red fox"))
	th.WaitTurns(t, 1)
	th.Lock()
	defer th.Unlock()
	if len(th.Posts) != 1 || th.Posts[0].Link != "https://easel.example.com/gallery/s/"+q.SessionID+"?sig=x" {
		t.Errorf("posts %+v, want one with the session's gallery link", th.Posts)
	}
}
