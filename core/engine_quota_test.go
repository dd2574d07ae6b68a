package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/openaitest"
	"github.com/easel-bot/easel/storage"
)

// testClock is a settable clock for the engine and the store.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// costGen is a coretest.Generator that estimates each image at estimate dollars and
// reports actual dollars per image made.
type costGen struct {
	*coretest.Generator
	mu               sync.Mutex
	estimate, actual float64
}

func (g *costGen) EstimateCost(req core.GenerateRequest) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.estimate * float64(max(req.N, 1))
}

func (g *costGen) Generate(ctx context.Context, req core.GenerateRequest) (core.Result, error) {
	res, err := g.Generator.Generate(ctx, req)
	g.mu.Lock()
	res.CostUSD = g.actual * float64(len(res.Images))
	g.mu.Unlock()
	return res, err
}

func (g *costGen) set(estimate, actual float64) {
	g.mu.Lock()
	g.estimate, g.actual = estimate, actual
	g.mu.Unlock()
}

// slowUsage reads usage from the real store after a pause, which widens the
// window between reading the counters and holding a request's images: any
// check not made atomically with its hold would let several requests
// through it at once.
type slowUsage struct{ *storage.DB }

func (s slowUsage) UsageTotals(ctx context.Context, key string) (core.UsageTotals, error) {
	time.Sleep(time.Millisecond)
	return s.DB.UsageTotals(ctx, key)
}

// rig is an engine with quotas over a real store in a temp dir, which can be
// closed and reopened on the same dir.
type rig struct {
	t      *testing.T
	dir    string
	cfg    core.EngineConfig
	clock  *testClock
	gen    core.Generator
	slow   bool // read usage through slowUsage
	db     *storage.DB
	engine *core.Engine
}

func newRig(t *testing.T, cfg core.EngineConfig, gen core.Generator) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), cfg: cfg, gen: gen,
		clock: &testClock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}}
	t.Cleanup(r.close)
	return r
}

func (r *rig) open() {
	r.t.Helper()
	db, err := storage.Open(context.Background(), r.dir, storage.Options{Timeout: time.Second, Now: r.clock.Now})
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := r.cfg
	cfg.DefaultProvider = "fake"
	cfg.Limits = core.Limits{MaxN: 4, MaxPromptChars: 32000}
	var store core.SessionStore = db
	if r.slow {
		store = slowUsage{db}
	}
	e, err := core.NewEngine(cfg, store, coretest.ImageDir(r.t, r.dir), map[string]core.Generator{"fake": r.gen}, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	core.SetEngineClock(e, r.clock.Now)
	r.db, r.engine = db, e
}

// close stops the engine, letting running turns finish, and closes the store.
func (r *rig) close() { r.stop(context.Background()) }

// stop closes the engine with ctx (an expired one abandons running turns,
// which stay queued) and then the store.
func (r *rig) stop(ctx context.Context) {
	if r.engine == nil {
		return
	}
	_ = r.engine.Close(ctx)
	if err := r.db.Close(); err != nil {
		r.t.Errorf("db close: %v", err)
	}
	r.engine = nil
}

// ask sends a prompt from user in the thread, returning Handle's error.
func (r *rig) ask(th core.Thread, thread string, user core.User, text string) error {
	_, err := r.engine.Handle(context.Background(), th, core.Message{Platform: "chat", Workspace: "W1", Thread: thread, User: user, Text: text})
	return err
}

// press presses a button of the thread's head.
func (r *rig) press(th core.Thread, thread string, user core.User, action core.Action) error {
	_, err := r.engine.Handle(context.Background(), th, core.Message{Platform: "chat", Workspace: "W1", Thread: thread, User: user, Action: action})
	return err
}

// mustAsk sends a prompt that must be accepted.
func (r *rig) mustAsk(th core.Thread, thread string, user core.User, text string) {
	r.t.Helper()
	if err := r.ask(th, thread, user, text); err != nil {
		r.t.Fatalf("%s asking %q: %v", user.ID, text, err)
	}
}

func (r *rig) usage(key string) core.UsageTotals {
	r.t.Helper()
	u, err := r.db.UsageTotals(context.Background(), key)
	if err != nil {
		r.t.Fatal(err)
	}
	return u
}

// wantQuota fails unless err is a Quota error whose message has every part.
func wantQuota(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	var e *core.Error
	if !errors.As(err, &e) || e.Kind != core.Quota {
		t.Fatalf("%s: got %v, want a quota refusal", what, err)
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Errorf("%s: message %q lacks %q", what, e.Message, p)
		}
	}
}

var bo = core.User{ID: "U2", Name: "bo"}

// opener returns a func that closes gate, once. Call it after newRig: it is
// also called when the test ends, before the rig closes, so that a failed
// check never leaves turns waiting at the gate.
func opener(t *testing.T, gate chan struct{}) func() {
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	return open
}

// TestQuotaExactUnderConcurrency: 50 simultaneous requests from one user,
// in 50 threads, with 3 images a day and no in-flight cap in the way: exactly
// 3 are accepted and 47 refused with a message giving the limit and the
// reset. A refused request records nothing.
func TestQuotaExactUnderConcurrency(t *testing.T) {
	gen := coretest.Gated(make(chan struct{}))
	r := newRig(t, core.EngineConfig{MaxPerUser: 100, MaxConcurrent: 50, Quotas: core.Quotas{ImagesPerUserDay: 3}}, gen)
	r.slow = true
	openGate := opener(t, gen.Gate())
	r.open()

	const n = 50
	threads := make([]*coretest.Thread, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		threads[i] = coretest.NewThread()
		wg.Go(func() {
			<-start
			errs[i] = r.ask(threads[i], fmt.Sprintf("t%d", i), ana, "a fox")
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)

	accepted := 0
	for i, err := range errs {
		if err == nil {
			accepted++
			continue
		}
		wantQuota(t, fmt.Sprintf("request %d", i), err, "your 3 images for today", "resets at midnight UTC, in 14h 00m")
	}
	if accepted != 3 {
		t.Fatalf("%d of %d simultaneous requests accepted with a quota of 3 images a day, want exactly 3", accepted, n)
	}
	t.Logf("%d simultaneous requests from one user, quota 3/day: %d accepted, %d refused in %v", n, accepted, n-accepted, took)
	sessions, err := r.db.Sessions(context.Background())
	if err != nil || len(sessions) != 3 {
		t.Errorf("%d sessions stored (err %v), want 3: refused requests must record nothing", len(sessions), err)
	}

	// The three finish: the durable counter holds them, and the quota stays full.
	openGate()
	for i, err := range errs {
		if err == nil {
			threads[i].WaitTurns(t, 1)
		}
	}
	if u := r.usage("user/chat/U1/2026-03-04"); u.Images != 3 || u.Turns != 3 {
		t.Errorf("usage after the three turns: %+v, want 3 images in 3 turns", u)
	}
	wantQuota(t, "a request after the three finished", r.ask(coretest.NewThread(), "later", ana, "a fox"), "your 3 images for today")
	// Another user has a quota of their own.
	th := coretest.NewThread()
	if err := r.ask(th, "bo", bo, "a fox"); err != nil {
		t.Errorf("another user refused: %v", err)
	}
	th.WaitTurns(t, 1)
}

// TestQuotaButtonsCount: turns queued by buttons count by the images they
// make (variations make several), and undo, which makes none, is always
// allowed.
func TestQuotaButtonsCount(t *testing.T) {
	r := newRig(t, core.EngineConfig{Variations: 4, MaxPerUser: 10, Quotas: core.Quotas{ImagesPerUserDay: 7}}, &coretest.Generator{})
	r.open()
	th := coretest.NewThread()
	r.mustAsk(th, "t", ana, "a fox")
	th.WaitTurns(t, 1)
	r.mustAsk(th, "t", ana, "make it blue") // v2, from v1
	th.WaitTurns(t, 2)
	if err := r.press(th, "t", ana, core.ActionVariations); err != nil { // 2 + 4 = 6
		t.Fatal(err)
	}
	th.WaitTurns(t, 3)
	wantQuota(t, "variations with 1 image left", r.press(th, "t", ana, core.ActionVariations),
		"this request makes 4 images, but only 1 of your 7 images for today is left")
	if err := r.press(th, "t", ana, core.ActionRegenerate); err != nil { // 7
		t.Fatalf("regenerate with 1 image left: %v", err)
	}
	th.WaitTurns(t, 4)
	wantQuota(t, "high quality with none left", r.press(th, "t", ana, core.ActionHighQuality), "you have used your 7 images for today")
	wantQuota(t, "a prompt asking for 2 with none left", r.ask(th, "t", ana, "a cat --n 2"), "your 7 images")
	if err := r.press(th, "t", ana, core.ActionUndo); err != nil {
		t.Errorf("undo refused although it makes no image: %v", err)
	}
	th.WaitTurns(t, 5)
	s, err := r.engine.Session(context.Background(), "chat", "t")
	if err != nil {
		t.Fatal(err)
	}
	if last := s.Turns[len(s.Turns)-1]; last.Kind != core.KindUndo || last.Status != core.StatusDone {
		t.Fatalf("the undo turn: %+v", last)
	}
	if u := r.usage("user/chat/U1/2026-03-04"); u.Images != 7 || u.Turns != 5 {
		t.Errorf("usage %+v, want 7 images in 5 turns (undo counts as a turn with no image)", u)
	}
}

// TestQuotaFailedTurnDoesNotConsume: a turn that fails gives its images
// back; only done turns count.
func TestQuotaFailedTurnDoesNotConsume(t *testing.T) {
	gen := &coretest.Generator{}
	gen.Fail(core.Errorf(core.Unavailable, "provider down"), core.Errorf(core.Refused, "declined"))
	r := newRig(t, core.EngineConfig{Quotas: core.Quotas{ImagesPerUserDay: 2}}, gen)
	r.open()
	th := coretest.NewThread()
	for i := 1; i <= 4; i++ { // two failures, then two images
		r.mustAsk(th, "t", ana, fmt.Sprintf("a fox %d", i))
		th.WaitTurns(t, i)
	}
	wantQuota(t, "the fifth request", r.ask(th, "t", ana, "a fox 5"), "your 2 images for today")
	s, err := r.engine.Session(context.Background(), "chat", "t")
	if err != nil {
		t.Fatal(err)
	}
	var failed, done int
	for _, turn := range s.Turns {
		switch turn.Status {
		case core.StatusFailed:
			failed++
		case core.StatusDone:
			done++
		}
	}
	if failed != 2 || done != 2 {
		t.Errorf("%d failed and %d done turns, want 2 and 2", failed, done)
	}
	if u := r.usage("user/chat/U1/2026-03-04"); u.Images != 2 || u.Turns != 2 {
		t.Errorf("usage %+v, want only the 2 done turns", u)
	}
}

// TestQuotaSurvivesRestart: the counters are durable, and the images of
// turns still in flight at a stop are held again when they resume.
func TestQuotaSurvivesRestart(t *testing.T) {
	gen := &coretest.Generator{}
	r := newRig(t, core.EngineConfig{MaxPerUser: 10, Quotas: core.Quotas{ImagesPerUserDay: 3}}, gen)
	r.open()
	th := coretest.NewThread()
	for i := 1; i <= 3; i++ {
		r.mustAsk(th, "t", ana, "a fox")
		th.WaitTurns(t, i)
	}
	r.close()
	r.open()
	wantQuota(t, "after a restart at 3/3", r.ask(coretest.NewThread(), "t2", ana, "a fox"), "you have used your 3 images for today")

	// Bo has two turns running when Easel is stopped hard.
	first := make(chan struct{})
	r.gen = coretest.Gated(first)
	r.close()
	r.open()
	for i := range 2 {
		if err := r.ask(coretest.NewThread(), fmt.Sprintf("bo%d", i), bo, "a fox"); err != nil {
			t.Fatal(err)
		}
	}
	for r.gen.(*coretest.Generator).Calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	r.stop(expired)

	gate := make(chan struct{})
	openGate := opener(t, gate)
	r.gen = coretest.Gated(gate)
	r.open()
	resumed := coretest.NewThread()
	if n, err := r.engine.Resume(context.Background(), func(*core.Session) (core.Thread, bool) { return resumed, true }); err != nil || n != 2 {
		t.Fatalf("Resume = %d, %v; want 2 sessions", n, err)
	}
	th = coretest.NewThread()
	if err := r.ask(th, "bo3", bo, "a fox"); err != nil {
		t.Fatalf("bo's third image, with two resumed in flight: %v", err)
	}
	wantQuota(t, "bo's fourth image, with three in flight after a restart", r.ask(coretest.NewThread(), "bo4", bo, "a fox"), "your 3 images for today")
	openGate()
	resumed.WaitTurns(t, 2)
	th.WaitTurns(t, 1)
	if u := r.usage("user/chat/U2/2026-03-04"); u.Images != 3 {
		t.Errorf("bo's usage %+v, want 3 images", u)
	}
}

// TestQuotaAdminsExempt: with AdminsExempt an admin passes the quotas; without
// it they are bound like everyone. Their images count either way.
func TestQuotaAdminsExempt(t *testing.T) {
	boss := core.User{ID: "B1", Name: "boss"}
	for _, exempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("exempt=%v", exempt), func(t *testing.T) {
			r := newRig(t, core.EngineConfig{Admins: []string{"B1"}, Quotas: core.Quotas{ImagesPerUserDay: 1, AdminsExempt: exempt}}, &coretest.Generator{})
			r.open()
			th := coretest.NewThread()
			r.mustAsk(th, "t", boss, "a fox")
			th.WaitTurns(t, 1)
			err := r.ask(th, "t", boss, "a cat")
			if exempt {
				if err != nil {
					t.Fatalf("an exempt admin was refused: %v", err)
				}
				th.WaitTurns(t, 2)
				if u := r.usage("user/chat/B1/2026-03-04"); u.Images != 2 {
					t.Errorf("the admin's usage %+v, want 2 images counted", u)
				}
			} else {
				wantQuota(t, "an admin who is not exempt", err, "your 1 image for today")
			}
			// Others stay bound either way.
			other := coretest.NewThread()
			r.mustAsk(other, "o", ana, "a fox")
			other.WaitTurns(t, 1)
			wantQuota(t, "a user who is not an admin", r.ask(other, "o", ana, "a cat"), "your 1 image for today")
		})
	}
}

// TestQuotaWorkspaceSpend: a workspace's monthly budget is checked against
// the recorded cost of its done turns plus the estimated cost of those in
// flight and of the request.
func TestQuotaWorkspaceSpend(t *testing.T) {
	gen := &costGen{Generator: coretest.Gated(make(chan struct{})), estimate: 0.30, actual: 0.25}
	r := newRig(t, core.EngineConfig{Quotas: core.Quotas{SpendPerWorkspaceMonthUSD: 1.05}}, gen)
	openGate := opener(t, gen.Gate())
	r.open()
	users := []core.User{{ID: "A"}, {ID: "B"}, {ID: "C"}, {ID: "D"}, {ID: "E"}}
	threads := map[string]*coretest.Thread{}
	ask := func(u core.User) error {
		th := threads[u.ID]
		if th == nil {
			th = coretest.NewThread()
			threads[u.ID] = th
		}
		return r.ask(th, u.ID, u, "a fox")
	}
	for _, u := range users[:3] { // 3 × $0.30 estimated, in flight
		if err := ask(u); err != nil {
			t.Fatal(err)
		}
	}
	wantQuota(t, "a fourth with $0.90 in flight", ask(users[3]),
		"this request would cost about $0.30, but this workspace has only $0.15 left of its image budget of $1.05 for March 2026",
		"it resets on 1 April at 00:00 UTC")
	// Another workspace has its own budget.
	other := coretest.NewThread()
	if _, err := r.engine.Handle(context.Background(), other, core.Message{Platform: "chat", Workspace: "W2", Thread: "w2", User: users[3], Text: "a fox"}); err != nil {
		t.Errorf("a request in another workspace was refused: %v", err)
	}
	openGate()
	for _, u := range users[:3] {
		threads[u.ID].WaitTurns(t, 1)
	}
	other.WaitTurns(t, 1)
	// Recorded: 3 × $0.25. $0.75 + $0.30 fits $1.05 exactly.
	if u := r.usage("workspace/chat/W1/2026-03"); math.Abs(u.CostUSD-0.75) > 1e-9 || u.Images != 3 {
		t.Errorf("workspace usage %+v, want $0.75 for 3 images", u)
	}
	if err := ask(users[3]); err != nil {
		t.Fatalf("a request that fits the budget exactly: %v", err)
	}
	threads["D"].WaitTurns(t, 1)
	wantQuota(t, "with $1.00 spent", ask(users[4]), "only $0.05 left")
	// The provider's own figure can exceed the estimate: then the budget is
	// used up and even a request estimated at nothing is refused.
	gen.set(0.04, 0.10)
	if err := ask(users[4]); err != nil {
		t.Fatalf("a $0.04 request with $0.05 left: %v", err)
	}
	threads["E"].WaitTurns(t, 1)
	gen.set(0, 0)
	wantQuota(t, "with $1.10 of $1.05 spent", ask(users[0]), "this workspace has used its image budget of $1.05 for March 2026")
	// Undo costs nothing and makes no image: allowed.
	if err := r.press(threads["A"], "A", users[0], core.ActionUndo); err != nil {
		t.Errorf("undo refused with the budget spent: %v", err)
	}
	threads["A"].WaitTurns(t, 2)
}

// TestQuotaRollover: the day's images and the month's budget start afresh
// at midnight UTC, and a turn's images count on the day it finishes.
func TestQuotaRollover(t *testing.T) {
	gen := &costGen{Generator: &coretest.Generator{}, estimate: 0.5, actual: 0.5}
	r := newRig(t, core.EngineConfig{Quotas: core.Quotas{ImagesPerUserDay: 2, SpendPerWorkspaceMonthUSD: 1.5}}, gen)
	r.clock.Set(time.Date(2026, 3, 31, 23, 50, 0, 0, time.UTC))
	r.open()
	th := coretest.NewThread()
	for i := 1; i <= 2; i++ {
		r.mustAsk(th, "t", ana, "a fox")
		th.WaitTurns(t, i)
	}
	wantQuota(t, "a third image before midnight", r.ask(th, "t", ana, "a fox"), "your 2 images for today", "in 10m")
	wantQuota(t, "bo with $1.00 of $1.50 spent", r.ask(coretest.NewThread(), "b", bo, "a fox --n 2"), "only $0.50 left of its image budget of $1.50 for March 2026", "1 April at 00:00 UTC, in 10m")

	r.clock.Set(time.Date(2026, 4, 1, 0, 5, 0, 0, time.UTC))
	r.mustAsk(th, "t", ana, "a fox")
	th.WaitTurns(t, 3)
	b := coretest.NewThread()
	if err := r.ask(b, "b", bo, "a fox --n 2"); err != nil {
		t.Fatalf("a $1.00 request in a new month: %v", err)
	}
	b.WaitTurns(t, 1)
	if u := r.usage("user/chat/U1/2026-03-31"); u.Images != 2 {
		t.Errorf("March 31: %+v, want 2 images", u)
	}
	if u := r.usage("user/chat/U1/2026-04-01"); u.Images != 1 {
		t.Errorf("April 1: %+v, want 1 image", u)
	}
	if u := r.usage("workspace/chat/W1/2026-04"); u.CostUSD != 1.5 {
		t.Errorf("April: %+v, want $1.50", u)
	}
}

// TestQuotaOpenAIBudget runs the OpenAI provider against the fake API: a
// request is checked against the estimate from the price table, and the
// budget then counts the cost recorded from the usage OpenAI reported.
func TestQuotaOpenAIBudget(t *testing.T) {
	srv := openaitest.NewServer(t)
	gen, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: srv.URL(), MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	// The estimate is not below what the fake reports for the same request.
	for _, flags := range []core.Flags{{}, {Quality: "low"}, {Quality: "medium", Size: "1024x1024"}, {Quality: "high", Size: "1536x1024"}, {Quality: "auto", Aspect: "16:9"}} {
		req := core.GenerateRequest{Kind: core.KindGenerate, Prompt: "a red fox in the snow", Flags: flags, N: 2}
		est := gen.EstimateCost(req)
		res, err := gen.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		// The fake counts the prompt once per image, the estimate once.
		if est <= 0 || est < 0.99*res.CostUSD || est > 10*res.CostUSD {
			t.Errorf("flags %+v: estimate $%.4f, recorded $%.4f", flags, est, res.CostUSD)
		}
	}
	low := gen.EstimateCost(core.GenerateRequest{Prompt: "x", Flags: core.Flags{Quality: "low"}, N: 1})
	high := gen.EstimateCost(core.GenerateRequest{Prompt: "x", Flags: core.Flags{Quality: "high"}, N: 1})
	edit := gen.EstimateCost(core.GenerateRequest{Prompt: "x", Flags: core.Flags{Quality: "high"}, N: 1, Base: &core.Image{}})
	if !(low < high && high < edit) {
		t.Errorf("estimates: low $%.4f, high $%.4f, high edit $%.4f: want increasing", low, high, edit)
	}

	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := core.NewEngine(core.EngineConfig{DefaultProvider: "openai", Limits: core.Limits{MaxN: 4, MaxPromptChars: 32000},
		Quotas: core.Quotas{SpendPerWorkspaceMonthUSD: 0.25}}, db, coretest.ImageDir(t, dir), map[string]core.Generator{"openai": gen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	msg := func(thread, text string) core.Message {
		return core.Message{Platform: "chat", Workspace: "W1", Thread: thread, User: ana, Text: text}
	}
	// High quality at 1536x1024 is estimated at about $0.19.
	th := coretest.NewThread()
	if _, err := e.Handle(context.Background(), th, msg("t1", "a fox --quality high --size 1536x1024")); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 1)
	rows, err := db.UsageTotals(context.Background(), core.WorkspaceMonthKey("chat", "W1", time.Now()))
	if err != nil || rows.CostUSD <= 0 || rows.CostUSD > 0.25 {
		t.Fatalf("recorded spend %+v (%v), want the fake's usage priced, under $0.25", rows, err)
	}
	// Two more at high quality would exceed $0.25; one at low quality fits.
	_, err = e.Handle(context.Background(), coretest.NewThread(), msg("t2", "a fox --quality high --size 1536x1024 --n 2"))
	wantQuota(t, "two high-quality images over budget", err, "would cost about $0.3", "$0.25")
	th = coretest.NewThread()
	if _, err := e.Handle(context.Background(), th, msg("t3", "a fox --quality low --size 1024x1024")); err != nil {
		t.Fatalf("a low-quality image within budget: %v", err)
	}
	th.WaitTurns(t, 1)
}
