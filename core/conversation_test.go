package core_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// talker is a provider that holds the thread as a conversation: it answers
// a prompt ending in "?" in words and draws anything else, naming the state
// each answer and image ends in "r<call>" (images "r<call>.<i>"), and says
// beside every image what besides holds, if anything.
type talker struct {
	mu      sync.Mutex
	reqs    []core.GenerateRequest
	besides string
}

func (g *talker) Generate(_ context.Context, req core.GenerateRequest) (core.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reqs = append(g.reqs, req)
	call := len(g.reqs)
	res := core.Result{Model: "talker-1", Usage: core.Usage{ConversationInputTokens: 40, ConversationOutputTokens: 8}, CostUSD: 0.002, Attempts: 1}
	if strings.HasSuffix(req.Prompt, "?") {
		res.Text, res.ResponseID = "about “"+req.Prompt+"”: it says OPEN", fmt.Sprintf("r%d", call)
		return res, nil
	}
	res.Text = g.besides
	for i := range max(req.N, 1) {
		res.Images = append(res.Images, core.Image{Data: coretest.PNG(call*10 + i), MIME: "image/png"})
		res.Details = append(res.Details, core.ImageDetail{ResponseID: fmt.Sprintf("r%d.%d", call, i), RevisedPrompt: "drawn: " + req.Prompt})
	}
	return res, nil
}

func (g *talker) request(i int) core.GenerateRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reqs[i]
}

// TestConversationChain checks which stored state each turn continues and
// which thread text it carries: a refinement continues from the image it
// refines, a question answered in words becomes a turn with no version whose
// answer the next reply continues from, a branch continues from the older
// version, a regeneration from where its original continued, and undo goes
// back to what was said before the undone image.
func TestConversationChain(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), gen: &coretest.Generator{}, logs: &bytes.Buffer{}}
	g := &talker{}
	h.openWith(core.EngineConfig{}, g)
	t.Cleanup(h.close)
	th := coretest.NewThread()
	step := func(n int, m core.Message) {
		t.Helper()
		h.send(th, m)
		th.WaitTurns(t, n)
	}
	q := h.send(th, msg("c", "a shop sign"))
	th.WaitTurns(t, 1)
	step(2, msg("c", "make it red"))
	step(3, msg("c", "what does the sign say?"))
	step(4, msg("c", "make the letters gold"))
	b := msg("c", "make it night")
	b.Version = 1
	step(5, b)
	step(6, core.Message{Platform: "test", Thread: "c", User: ana, Action: core.ActionRegenerate, Version: 2})
	step(7, core.Message{Platform: "test", Thread: "c", User: ana, Action: core.ActionUndo, Version: 3})
	step(8, msg("c", "add a cat"))

	conv := func(ex ...string) []core.Exchange {
		var c []core.Exchange
		for i := 0; i < len(ex); i += 2 {
			c = append(c, core.Exchange{Prompt: ex[i], Answer: ex[i+1]})
		}
		return c
	}
	answer := "about “what does the sign say?”: it says OPEN"
	for i, want := range []struct {
		prev string
		conv []core.Exchange
	}{
		{"", nil},
		{"r1.0", conv("a shop sign", "")},
		{"r2.0", conv("a shop sign", "", "make it red", "")},
		{"r3", conv("a shop sign", "", "make it red", "", "what does the sign say?", answer)},
		{"r1.0", conv("a shop sign", "")},
		{"r1.0", conv("a shop sign", "")}, // regenerate v2: from where v2's request continued
		// undo costs no call; the reply after it refines v2 again, after the answer about it
		{"r3", conv("a shop sign", "", "make it red", "", "what does the sign say?", answer)},
	} {
		req := g.request(i)
		if req.PreviousResponseID != want.prev || !slices.Equal(req.Conversation, want.conv) {
			t.Errorf("call %d (%q): continues %q with %q; want %q with %q", i+1, req.Prompt, req.PreviousResponseID, req.Conversation, want.prev, want.conv)
		}
	}

	s := h.session(q.SessionID)
	ans := s.Turn(3)
	if ans.Kind != core.KindAnswer || ans.Status != core.StatusDone || len(ans.Outputs) != 0 || ans.Base != 2 ||
		ans.Answer != answer || ans.ResponseID != "r3" || ans.CostUSD != 0.002 || ans.Usage.ConversationInputTokens != 40 || ans.Posting {
		t.Errorf("answer turn recorded as %+v", *ans)
	}
	if len(s.Versions) != 6 || s.Head != 6 || s.Version(6).Parent != 2 {
		t.Errorf("versions %d head v%d: an answer must make no version", len(s.Versions), s.Head)
	}
	for n, want := range map[int]string{1: "r1.0", 2: "r2.0", 3: "r4.0", 4: "r5.0", 5: "r6.0", 6: "r7.0"} {
		if v := s.Version(n); v.ResponseID != want || !strings.HasPrefix(v.RevisedPrompt, "drawn: ") {
			t.Errorf("v%d: response %q revised prompt %q, want %q", n, v.ResponseID, v.RevisedPrompt, want)
		}
	}

	th.Lock()
	replies, posts := slices.Clone(th.Replies), len(th.Posts)
	th.Unlock()
	if !slices.Contains(replies, "💬 "+answer) || posts != 6 {
		t.Errorf("replies %q, %d images posted; want the answer posted as text and 6 images", replies, posts)
	}

	// The answer counts as a turn and its cost, but no image.
	day, err := h.db.UsageTotals(context.Background(), core.UserDayKey("test", ana.ID, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if day.Turns != 8 || day.Images != 6 || fmt.Sprintf("%.3f", day.CostUSD) != "0.014" {
		t.Errorf("usage %+v, want 8 turns (undo and the answer count), 6 images, $0.014 (7 provider calls, the answer's included)", day)
	}
}

// TestAnswerBesideImages posts the words a provider says beside its images
// once, before them, and records them on the turn.
func TestAnswerBesideImages(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), gen: &coretest.Generator{}, logs: &bytes.Buffer{}}
	g := &talker{besides: "Here are two takes: one warm, one cool."}
	h.openWith(core.EngineConfig{}, g)
	t.Cleanup(h.close)
	th := coretest.NewThread()
	var mu sync.Mutex
	var order []string
	th.OnReply = func(text string) { mu.Lock(); order = append(order, text); mu.Unlock() }
	th.OnPost = func(p core.ImagePost) { mu.Lock(); order = append(order, fmt.Sprintf("v%d", p.Version)); mu.Unlock() }
	q := h.send(th, msg("b", "a lighthouse --n 2"))
	th.WaitTurns(t, 1)

	mu.Lock()
	defer mu.Unlock()
	if want := []string{"💬 " + g.besides, "v1"}; !slices.Equal(order, want) {
		t.Errorf("posted %q, want %q: the words once, before the grid of the images", order, want)
	}
	turn := h.session(q.SessionID).Turn(1)
	if turn.Kind != core.KindGenerate || turn.Answer != g.besides || turn.Posting || !slices.Equal(turn.Posted, []int{0, 1}) {
		t.Errorf("turn kind %s answer %q posting %v posted %v", turn.Kind, turn.Answer, turn.Posting, turn.Posted)
	}
}

// TestTreeShowsAnswers checks what `sessions show` prints of a
// conversation: the revised prompt under its version, each answer in words
// under the version it was about (those before any image first), with its
// cost, and the conversation model's tokens among the turns.
func TestTreeShowsAnswers(t *testing.T) {
	long := "The same Berlin office poster with every letter of the title set noticeably bolder, nothing else changed"
	s := &core.Session{ID: "s1", Head: 2, Turns: []core.Turn{
		{ID: 1, Kind: core.KindAnswer, Prompt: "a poster?", Answer: "For which office?", Model: "gpt-5.5", CostUSD: 0.001, Status: core.StatusDone,
			Usage: core.Usage{ConversationInputTokens: 120, ConversationOutputTokens: 9}},
		{ID: 2, Kind: core.KindGenerate, Prompt: "Berlin", Model: "gpt-image-2", Provider: "openai-responses", Status: core.StatusDone, Outputs: []int{1}},
		{ID: 3, Kind: core.KindAnswer, Base: 1, Prompt: "which font is that?", Answer: "A condensed grotesque,\nlike Oswald.", Model: "gpt-5.5", CostUSD: 0.002, Status: core.StatusDone},
		{ID: 4, Kind: core.KindRefine, Base: 1, Prompt: "bolder", Model: "gpt-image-2", Provider: "openai-responses", Status: core.StatusDone, Outputs: []int{2}},
	}, Versions: []core.Version{
		{N: 1, Turn: 2, Image: core.ImageRef{SHA256: "a", MIME: "image/png"}, RevisedPrompt: "A poster for the Berlin office"},
		{N: 2, Parent: 1, Turn: 4, Image: core.ImageRef{SHA256: "b", MIME: "image/png"}, RevisedPrompt: long},
	}}
	var tree, turns bytes.Buffer
	if err := core.WriteTree(&tree, s, nil); err != nil {
		t.Fatal(err)
	}
	if err := core.WriteTurns(&turns, s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(tree.String(), "\n"), "\n")
	want := []string{
		"💬 #1 “a poster?” → “For which office?” · gpt-5.5 · $0.001",
		"v1 · “Berlin” · drawn as “A poster for the Berlin office” · gpt-image-2 · $0.000",
		"   💬 #3 “which font is that?” → “A condensed grotesque, like Oswald.” · gpt-5.5 · $0.002",
		"└─ v2 (refine of v1) · “bolder” · drawn as “" + core.Truncate(long, 80) + "” · gpt-image-2 · $0.000  ← head",
		"      drawn as “" + long + "”",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("tree:\n%s\nwant:\n%s", tree.String(), strings.Join(want, "\n"))
	}
	first := strings.Split(turns.String(), "\n")[0]
	for _, part := range []string{"answer", "💬 “For which office?”", "conversation model in 120, out 9", "$0.001"} {
		if !strings.Contains(first, part) {
			t.Errorf("turn line %q lacks %q", first, part)
		}
	}
	if c := core.Caption(s, 1); !strings.Contains(c, "drawn as “A poster for the Berlin office”") {
		t.Errorf("caption %q does not show the revised prompt", c)
	}
}

// TestAnswersPostedAfterACrash: answers in words left unposted by an
// earlier process are posted on the next start, once: the words beside an
// image (already in the thread, so not again) before the image, and an
// answer on its own.
func TestAnswersPostedAfterACrash(t *testing.T) {
	h := newHarness(t, core.EngineConfig{})
	ctx := context.Background()
	ref, err := h.images.Put(ctx, core.Image{Data: testPNG(300), MIME: "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	sess := &core.Session{ID: "talked", Platform: "test", Thread: "t", CreatedBy: ana}
	if err := h.db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	_, err = h.db.UpdateSession(ctx, sess.ID, func(s *core.Session) error {
		s.Versions = []core.Version{{N: 1, Turn: 1, Image: ref, ResponseID: "r1"}}
		s.Head = 1
		s.Turns = []core.Turn{
			{ID: 1, Kind: core.KindGenerate, Action: core.ActionPrompt, User: ana, Prompt: "a sign", Status: core.StatusDone,
				Outputs: []int{1}, Answer: "Here it is.", Posting: true},
			{ID: 2, Kind: core.KindAnswer, Action: core.ActionPrompt, User: ana, Prompt: "what does it say?", Base: 1, Status: core.StatusDone,
				Answer: "OPEN", ResponseID: "r2", Posting: true},
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	th := &resender{Thread: coretest.NewThread(), shown: []string{"💬 Here it is."}}
	if _, err := h.engine.Resume(ctx, func(*core.Session) (core.Thread, bool) { return th, true }); err != nil {
		t.Fatal(err)
	}
	th.WaitTurns(t, 2)
	th.Lock()
	replies, posts := slices.Clone(th.Replies), len(th.Posts)
	th.Unlock()
	if want := []string{"💬 OPEN"}; !slices.Equal(replies, want) || posts != 1 {
		t.Errorf("replies %q and %d images; want %q and v1", replies, posts, want)
	}
	s := h.session(sess.ID)
	if t1, t2 := s.Turn(1), s.Turn(2); t1.Posting || t2.Posting || !slices.Equal(t1.Posted, []int{0, 1}) {
		t.Errorf("turn 1 posting %v posted %v, turn 2 posting %v", t1.Posting, t1.Posted, t2.Posting)
	}
}

// TestQuotaEstimateSeesTheConversation: the cost a turn is estimated at
// when it arrives, before it is recorded, counts the answers given since the
// image it refines.
func TestQuotaEstimateSeesTheConversation(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), gen: &coretest.Generator{}, logs: &bytes.Buffer{}}
	g := &estimatingTalker{}
	h.openWith(core.EngineConfig{Quotas: core.Quotas{SpendPerWorkspaceMonthUSD: 100}}, g)
	t.Cleanup(h.close)
	th := coretest.NewThread()
	h.send(th, msg("q", "a shop sign"))
	th.WaitTurns(t, 1)
	h.send(th, msg("q", "what does it say?"))
	th.WaitTurns(t, 2)
	g.mu.Lock()
	g.estimated = nil
	g.mu.Unlock()
	h.send(th, msg("q", "make it red"))
	th.WaitTurns(t, 3)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.estimated) == 0 || g.estimated[0].PreviousResponseID != "r2" || len(g.estimated[0].Conversation) != 2 {
		t.Errorf("estimated %+v; want the request continuing the answer, with the thread", g.estimated)
	}
}

// estimatingTalker is a talker that records the requests it estimates.
type estimatingTalker struct {
	talker
	estimated []core.GenerateRequest
}

func (g *estimatingTalker) EstimateCost(req core.GenerateRequest) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.estimated = append(g.estimated, req)
	return 0.01
}
