package core_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

func TestParseStyle(t *testing.T) {
	lim := core.Limits{MaxN: 4, MaxPromptChars: 100}
	s, err := core.ParseStyle("Brand", "flat vector art, teal --ar 16:9 --quality high --transparent", lim)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "brand" || s.Prompt != "flat vector art, teal" || s.Flags.Quality != "high" || s.Flags.Size != "1360x768" || !s.Flags.Transparent {
		t.Errorf("ParseStyle = %+v", s)
	}
	if got := s.Spec(); got != "flat vector art, teal --ar 16:9 --quality high --transparent" {
		t.Errorf("Spec() = %q", got)
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"brand", "", "is empty"},
		{"brand", "--n 2", "--n"},
		{"brand", "x --seed 4", "--seed"},
		{"brand", "x --region top", "--region"},
		{"brand", "x --style other", "--style"},
		{"brand", "x --quality ultra", "--quality ultra"},
		{"no spaces", "x", "not a style name"},
		{"", "x", "not a style name"},
		{strings.Repeat("a", 33), "x", "not a style name"},
		{"émoji", "x", "not a style name"},
		{"brand", strings.Repeat("w", 1001), "limit is 1000"},
	} {
		if _, err := core.ParseStyle(tc.name, tc.spec, lim); core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseStyle(%q, %.20q) = %v, want Invalid naming %q", tc.name, tc.spec, err, tc.want)
		}
	}
}

func TestParseChannelDefaults(t *testing.T) {
	d, err := core.ParseChannelDefaults("--style Brand --quality low --ar 3:2 --model gpt-image-1", core.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Style != "brand" || d.Quality != "low" || d.Size != "1248x832" || d.Model != "gpt-image-1" {
		t.Errorf("ParseChannelDefaults = %+v", d)
	}
	if got := d.String(); got != "--style brand --ar 3:2 --quality low --model gpt-image-1" {
		t.Errorf("String() = %q", got)
	}
	for _, spec := range []string{"brand", "--n 2", "--format png", "--style two words", ""} {
		if _, err := core.ParseChannelDefaults(spec, core.Limits{}); core.KindOf(err) != core.Invalid {
			t.Errorf("ParseChannelDefaults(%q) = %v, want Invalid", spec, err)
		}
	}
}

var admin = core.User{ID: "UADMIN", Name: "boss"}

// styleHarness is an engine with a style from the config and the store's
// styles, and an admin.
func styleHarness(t *testing.T) *harness {
	return newHarness(t, core.EngineConfig{
		Admins: []string{admin.ID},
		Styles: []core.Style{{Name: "house", Prompt: "in the house style", Flags: core.Flags{Quality: "medium", Aspect: "3:2", Size: "1248x832"}}},
	})
}

func TestStyleAppliesItsWordsFlagsAndReferences(t *testing.T) {
	h := styleHarness(t)
	ctx := context.Background()
	as := msg("", "")
	as.User = admin
	ref := core.Image{Data: testPNG(7), MIME: "image/png", Name: "logo.png"}
	if _, replaced, err := h.engine.SetStyle(ctx, as, "Brand", "flat vector art, teal --quality high --ar 16:9", []core.Image{ref}); err != nil || replaced {
		t.Fatalf("SetStyle = %v, replaced %v", err, replaced)
	}

	th := coretest.NewThread()
	q := h.send(th, msg("t1", "a fox --style brand --ar 1:1"))
	th.WaitTurns(t, 1)
	req := h.gen.Request(0)
	if req.Prompt != "a fox, flat vector art, teal" {
		t.Errorf("the provider was asked %q", req.Prompt)
	}
	if req.Flags.Quality != "high" || req.Flags.Size != "1024x1024" {
		t.Errorf("flags %+v: want the style's quality and the request's own --ar", req.Flags)
	}
	if len(req.Inputs) != 1 || string(req.Inputs[0].Data) != string(ref.Data) {
		t.Errorf("the style's reference image was not sent: %d inputs", len(req.Inputs))
	}
	if got := core.Caption(h.session(q.SessionID), 1); !strings.Contains(got, "“a fox” · style brand · ") {
		t.Errorf("the caption %q does not name the style", got)
	}
	turn := h.session(q.SessionID).Turns[0]
	if turn.Applied == nil || turn.Applied.Style != "brand" || turn.Applied.StylePrompt != "flat vector art, teal" || turn.Applied.FromChannel {
		t.Errorf("the turn records %+v", turn.Applied)
	}

	// A refinement remembers the style's words in its history; Regenerate
	// asks with them again.
	h.send(th, msg("t1", "make it blue"))
	th.WaitTurns(t, 2)
	if r := h.gen.Request(1); len(r.History) != 1 || r.History[0] != "a fox, flat vector art, teal" || r.Prompt != "make it blue" {
		t.Errorf("refinement: prompt %q history %q", r.Prompt, r.History)
	}
	m := msg("t1", "")
	m.Action, m.Version = core.ActionRegenerate, 1
	h.send(th, m)
	th.WaitTurns(t, 3)
	if r := h.gen.Request(2); r.Prompt != "a fox, flat vector art, teal" || r.Flags.Quality != "high" {
		t.Errorf("regenerate asked %q with %+v", r.Prompt, r.Flags)
	}
}

func TestUnknownStyleListsTheStyles(t *testing.T) {
	h := styleHarness(t)
	_, err := h.engine.Handle(context.Background(), coretest.NewThread(), msg("t1", "a fox --style nope"))
	if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), `no style named "nope"`) || !strings.Contains(err.Error(), "house") {
		t.Errorf("Handle = %v, want Invalid naming nope and listing house", err)
	}
	if len(h.gen.Requests()) != 0 {
		t.Error("a request with an unknown style was sent")
	}
}

func TestManagingStyles(t *testing.T) {
	h := styleHarness(t)
	ctx := context.Background()
	as := msg("", "")
	as.User = admin
	if _, _, err := h.engine.SetStyle(ctx, msg("", ""), "brand", "x", nil); core.KindOf(err) != core.Forbidden {
		t.Errorf("a member set a style: %v", err)
	}
	if _, _, err := h.engine.SetStyle(ctx, as, "house", "x", nil); core.KindOf(err) != core.Conflict || !strings.Contains(err.Error(), "taken") {
		t.Errorf("the config's name was taken over: %v", err)
	}
	if _, _, err := h.engine.SetStyle(ctx, as, "brand", "x --provider nowhere", nil); core.KindOf(err) != core.Invalid {
		t.Errorf("a style with an unknown provider: %v", err)
	}
	five := make([]core.Image, 5)
	if _, _, err := h.engine.SetStyle(ctx, as, "brand", "x", five); core.KindOf(err) != core.Invalid {
		t.Errorf("five reference images: %v", err)
	}
	if _, _, err := h.engine.SetStyle(ctx, as, "brand", "pastel", nil); err != nil {
		t.Fatal(err)
	}
	s, replaced, err := h.engine.SetStyle(ctx, as, "BRAND", "neon --quality low", nil)
	if err != nil || !replaced || s.Prompt != "neon" {
		t.Errorf("setting brand again = %+v, %v, %v; want it replaced", s, replaced, err)
	}
	other := as
	other.Workspace = "W2"
	if all, _ := h.engine.Styles(ctx, other); len(all) != 1 || all[0].Name != "house" {
		t.Errorf("another workspace sees %+v", all)
	}
	all, err := h.engine.Styles(ctx, as)
	if err != nil || len(all) != 2 || all[0].Name != "brand" || all[1].Name != "house" || !all[1].Config || all[0].By.ID != admin.ID {
		t.Errorf("Styles = %+v, %v", all, err)
	}

	if err := h.engine.DeleteStyle(ctx, msg("", ""), "brand"); core.KindOf(err) != core.Forbidden {
		t.Errorf("a member deleted a style: %v", err)
	}
	if err := h.engine.DeleteStyle(ctx, as, "house"); core.KindOf(err) != core.Conflict {
		t.Errorf("deleting the config's style: %v", err)
	}
	if err := h.engine.DeleteStyle(ctx, as, "brand"); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.DeleteStyle(ctx, as, "brand"); core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), "no style named") {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestChannelDefaultsApplyToNewSessions(t *testing.T) {
	h := styleHarness(t)
	ctx := context.Background()
	as := msg("", "")
	as.User, as.Channel, as.Category = admin, "C1", "K1"
	if _, err := h.engine.SetChannelDefaults(ctx, msg("", ""), "C1", "--quality low"); core.KindOf(err) != core.Forbidden {
		t.Errorf("a member set channel defaults: %v", err)
	}
	if _, err := h.engine.SetChannelDefaults(ctx, as, "C1", "--style nope"); core.KindOf(err) != core.Invalid {
		t.Errorf("defaults with an unknown style: %v", err)
	}
	if _, err := h.engine.SetChannelDefaults(ctx, as, "C1", "--style house --quality low --model m2"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.engine.SetChannelDefaults(ctx, as, "K1", "--quality high"); err != nil {
		t.Fatal(err)
	}

	in := func(thread, channel, category, text string) core.Message {
		m := msg(thread, text)
		m.Channel, m.Category = channel, category
		return m
	}
	th := coretest.NewThread()
	q := h.send(th, in("t1", "C1", "K1", "a cat --ar 1:1"))
	th.WaitTurns(t, 1)
	req := h.gen.Request(0)
	// The request's own --ar, then the channel's quality and model, then
	// the default style's words.
	if req.Flags.Size != "1024x1024" || req.Flags.Quality != "low" || req.Model != "m2" || req.Prompt != "a cat, in the house style" {
		t.Errorf("asked %q with %+v, model %q", req.Prompt, req.Flags, req.Model)
	}
	a := h.session(q.SessionID).Turns[0].Applied
	if a == nil || a.Style != "house" || !a.FromChannel || a.Defaults != "--style house --quality low --model m2" {
		t.Errorf("the turn records %+v", a)
	}
	// A reply refines with what the session has; the defaults are not
	// applied again.
	h.send(th, in("t1", "C1", "K1", "add a hat"))
	th.WaitTurns(t, 2)
	if a := h.session(q.SessionID).Turns[1].Applied; a != nil {
		t.Errorf("a refinement took the channel's defaults again: %+v", a)
	}
	// A channel without defaults of its own takes its category's.
	th2 := coretest.NewThread()
	h.send(th2, in("t2", "C2", "K1", "a dog"))
	th2.WaitTurns(t, 1)
	if r := h.gen.Request(2); r.Flags.Quality != "high" || r.Prompt != "a dog" {
		t.Errorf("in the category: asked %q with %+v", r.Prompt, r.Flags)
	}
	// Cleared, they no longer apply.
	if _, err := h.engine.SetChannelDefaults(ctx, as, "C1", ""); err != nil {
		t.Fatal(err)
	}
	if d, where, err := h.engine.ChannelDefaults(ctx, in("", "C1", "", "")); err != nil || !d.IsZero() || where != "" {
		t.Errorf("after clearing: %+v in %q, %v", d, where, err)
	}
}

// qualityCost estimates an image by its quality, as the GPT image models'
// prices go.
type qualityCost struct{ *coretest.Generator }

func (qualityCost) EstimateCost(req core.GenerateRequest) float64 {
	if req.Flags.Quality == "high" {
		return 0.25
	}
	return 0.01
}

func TestQuotasCountAStylesQuality(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), gen: streamingGen(), logs: &bytes.Buffer{}}
	h.openWith(core.EngineConfig{
		Quotas: core.Quotas{SpendPerWorkspaceMonthUSD: 0.1},
		Styles: []core.Style{{Name: "print", Flags: core.Flags{Quality: "high"}}},
	}, qualityCost{h.gen})
	t.Cleanup(h.close)
	if err := h.engine.Check(context.Background(), msg("t1", "a fox")); err != nil {
		t.Fatalf("a cheap request: %v", err)
	}
	if err := h.engine.Check(context.Background(), msg("t1", "a fox --style print")); core.KindOf(err) != core.Quota {
		t.Errorf("a style forcing high quality passed a $0.10 quota: %v", err)
	}
}

func TestStylesNeedAStoreToChangeInChat(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), gen: streamingGen(), logs: &bytes.Buffer{}, noStyleStore: true}
	h.open(core.EngineConfig{Admins: []string{admin.ID}})
	t.Cleanup(h.close)
	as := msg("", "")
	as.User = admin
	if _, _, err := h.engine.SetStyle(context.Background(), as, "brand", "x", nil); core.KindOf(err) != core.Conflict {
		t.Errorf("SetStyle without a store = %v, want Conflict", err)
	}
}

func TestUnknownStyleListsAtMostTwenty(t *testing.T) {
	var styles []core.Style
	for i := range 25 {
		styles = append(styles, core.Style{Name: fmt.Sprintf("s%02d", i), Prompt: "x"})
	}
	h := newHarness(t, core.EngineConfig{Styles: styles})
	_, err := h.engine.Handle(context.Background(), coretest.NewThread(), msg("t1", "a fox --style nope"))
	if core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), "s00, s01") || !strings.Contains(err.Error(), "s19, and 5 more") ||
		strings.Contains(err.Error(), "s20") {
		t.Errorf("Handle = %v, want the first 20 names and a count of the rest", err)
	}
}
