package core_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// describeGen is a coretest.Generator that also describes: each describe
// costs cost dollars (estimated at estimate) and fails with err if set.
type describeGen struct {
	*coretest.Generator
	mu             sync.Mutex
	estimate, cost float64
	err            error
	calls          int
	gate           chan struct{} // if set, each describe says so on started and waits for gate
	started        chan struct{}
}

var alice = core.User{ID: "U1", Name: "alice"}

var suggestions = []string{"a red fox", "a blue whale", "a green frog"}

func (g *describeGen) Describe(_ context.Context, img core.Image) (core.Description, error) {
	if g.gate != nil {
		g.started <- struct{}{}
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.err != nil {
		return core.Description{}, g.err
	}
	return core.Description{Suggestions: suggestions, Model: "eye-1", Usage: core.Usage{ConversationInputTokens: 100}, CostUSD: g.cost}, nil
}

func (g *describeGen) EstimateDescribe() float64 { return g.estimate }

func (r *rig) describe(thread string, user core.User, inputs ...core.Image) (core.Described, error) {
	return r.engine.Describe(context.Background(), core.Message{Platform: "chat", Workspace: "W1", Thread: thread, User: user, Inputs: inputs})
}

func testImage() core.Image {
	return core.Image{Data: coretest.PNG(1), MIME: "image/png", Name: "cat.png"}
}

// TestDescribeRecordsAndCounts: a describe records a done describe turn
// with its suggestions and no version, in a session made for the thread,
// and counts one turn, no image and its cost in the usage counters; a
// later prompt in the thread makes the session's first version.
func TestDescribeRecordsAndCounts(t *testing.T) {
	gen := &describeGen{Generator: &coretest.Generator{}, cost: 0.01}
	r := newRig(t, core.EngineConfig{}, gen)
	r.open()
	d, err := r.describe("T1", alice, testImage())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !slices.Equal(d.Suggestions, suggestions) || d.TurnID != 1 || d.CostUSD != 0.01 {
		t.Errorf("described %+v", d)
	}
	sess, err := r.db.Session(context.Background(), d.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	tu := sess.Turns[0]
	if tu.Kind != core.KindDescribe || tu.Status != core.StatusDone || len(tu.Outputs) != 0 || len(sess.Versions) != 0 ||
		len(tu.Inputs) != 1 || tu.Model != "eye-1" || !slices.Equal(tu.Suggestions, suggestions) {
		t.Errorf("turn %+v, %d versions", tu, len(sess.Versions))
	}
	for _, key := range []string{core.UserDayKey("chat", alice.ID, r.clock.Now()), core.WorkspaceMonthKey("chat", "W1", r.clock.Now())} {
		if u := r.usage(key); u.Turns != 1 || u.Images != 0 || u.CostUSD != 0.01 {
			t.Errorf("usage %s = %+v, want 1 turn, 0 images, $0.01", key, u)
		}
	}
	th := coretest.NewThread()
	r.mustAsk(th, "T1", alice, "a red fox")
	th.WaitTurns(t, 1)
	if sess, _ = r.db.Session(context.Background(), d.SessionID); sess.Head != 1 {
		t.Errorf("head %d after a prompt, want 1", sess.Head)
	}
}

// TestDescribeSuggestion: only who asked, or an admin, may use a
// suggestion; a number out of range is refused.
func TestDescribeSuggestion(t *testing.T) {
	gen := &describeGen{Generator: &coretest.Generator{}}
	r := newRig(t, core.EngineConfig{Admins: []string{"ADMIN"}}, gen)
	r.open()
	d, err := r.describe("T1", alice, testImage())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, err := r.engine.Suggestion(ctx, d.SessionID, d.TurnID, 2, alice); err != nil || p != suggestions[1] {
		t.Errorf("alice's suggestion 2: %q, %v", p, err)
	}
	if p, err := r.engine.Suggestion(ctx, d.SessionID, d.TurnID, 2, core.User{ID: "ADMIN"}); err != nil || p != suggestions[1] {
		t.Errorf("admin's suggestion 2: %q, %v", p, err)
	}
	if _, err := r.engine.Suggestion(ctx, d.SessionID, d.TurnID, 2, bo); core.KindOf(err) != core.Forbidden {
		t.Errorf("bo's press: %v, want Forbidden", err)
	}
	if _, err := r.engine.Suggestion(ctx, d.SessionID, d.TurnID, 4, alice); core.KindOf(err) != core.NotFound {
		t.Errorf("suggestion 4 of 3: %v, want NotFound", err)
	}
}

// TestDescribeRefusals: no image, a provider that cannot describe, a
// provider error and an exhausted budget are refused and record nothing.
func TestDescribeRefusals(t *testing.T) {
	gen := &describeGen{Generator: &coretest.Generator{}, estimate: 0.5, cost: 0.5}
	r := newRig(t, core.EngineConfig{Quotas: core.Quotas{SpendPerWorkspaceMonthUSD: 0.75}}, gen)
	r.open()
	if _, err := r.describe("T1", alice); core.KindOf(err) != core.Invalid {
		t.Errorf("no image: %v, want Invalid", err)
	}
	if _, err := r.engine.Describe(context.Background(), core.Message{Platform: "chat", Thread: "T1", User: alice, Text: "--provider nope", Inputs: []core.Image{testImage()}}); core.KindOf(err) != core.Invalid {
		t.Errorf("unknown provider: %v, want Invalid", err)
	}
	gen.err = core.Errorf(core.RateLimited, "slow down")
	if _, err := r.describe("T1", alice, testImage()); core.KindOf(err) != core.RateLimited {
		t.Errorf("provider error: %v, want it back", err)
	}
	gen.err = nil
	if _, err := r.describe("T1", alice, testImage()); err != nil {
		t.Fatalf("first describe within budget: %v", err)
	}
	if _, err := r.describe("T1", alice, testImage()); core.KindOf(err) != core.Quota {
		t.Errorf("describe over budget: %v, want Quota", err)
	}
	if gen.calls != 2 {
		t.Errorf("%d provider calls, want 2 (the refused ones call nothing)", gen.calls)
	}
	sess, err := r.db.SessionByThread(context.Background(), "chat", "T1")
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Turns) != 1 {
		t.Errorf("%d turns recorded, want 1", len(sess.Turns))
	}
}

// TestParseSuggestions reads JSON, fenced JSON and numbered lists, drops
// empty and repeated items and keeps four.
func TestParseSuggestions(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		want         []string
	}{
		{"json", `{"prompts": ["a fox", " a  whale ", "", "A FOX", "a frog", "a bird", "a cat"]}`, []string{"a fox", "a whale", "a frog", "a bird"}},
		{"fenced json", "```json\n{\"prompts\": [\"a fox\"]}\n```", []string{"a fox"}},
		{"numbered", "Here you go:\n1. a fox in snow\n2) \"a whale\"\n- a frog\nThanks", []string{"a fox in snow", "a whale", "a frog"}},
	} {
		got, err := core.ParseSuggestions(tc.answer)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "I cannot see an image.", `{"prompts": []}`} {
		if got, err := core.ParseSuggestions(bad); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}

// TestDescribeHoldsATurnInFlight: while a describe runs it holds one of
// its sender's turns in flight, and gives it back when it ends.
func TestDescribeHoldsATurnInFlight(t *testing.T) {
	gen := &describeGen{Generator: &coretest.Generator{}, gate: make(chan struct{}), started: make(chan struct{}, 1)}
	r := newRig(t, core.EngineConfig{MaxPerUser: 1}, gen)
	r.open()
	th := coretest.NewThread()
	r.mustAsk(th, "T1", alice, "a red fox")
	th.WaitTurns(t, 1)
	done := make(chan error, 1)
	go func() {
		_, err := r.describe("T1", alice, testImage())
		done <- err
	}()
	<-gen.started
	if err := r.ask(th, "T2", alice, "a blue whale"); core.KindOf(err) != core.Busy {
		t.Errorf("a prompt beside a running describe: %v, want it refused as one too many in flight", err)
	}
	close(gen.gate)
	if err := <-done; err != nil {
		t.Fatalf("Describe: %v", err)
	}
	r.mustAsk(th, "T3", alice, "a green frog")
}

// TestDescribeTakesAProviderSlot: a describe waits for a free provider
// slot while every slot renders.
func TestDescribeTakesAProviderSlot(t *testing.T) {
	gate := make(chan struct{})
	gen := &describeGen{Generator: coretest.Gated(gate)}
	r := newRig(t, core.EngineConfig{MaxConcurrent: 1, MaxPerUser: 5}, gen)
	openGate := opener(t, gate)
	r.open()
	th := coretest.NewThread()
	r.mustAsk(th, "T1", bo, "a red fox")
	for gen.Running.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.describe("T2", alice, testImage())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Describe returned %v while the only slot rendered", err)
	case <-time.After(100 * time.Millisecond):
	}
	openGate()
	if err := <-done; err != nil {
		t.Fatalf("Describe: %v", err)
	}
}
