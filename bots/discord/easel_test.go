package discord_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
)

// admin returns a new user with the Administrator permission in the
// fake's guilds.
func admin(srv *discordtest.Server) discordtest.User {
	u := srv.AddUser("ada")
	u.Admin = true
	return u
}

// houseStyle is a style of Easel's config.
var houseStyle = core.Style{Name: "house", Prompt: "in the house look", Flags: core.Flags{Quality: "medium"}}

// withHouseStyle gives the engine houseStyle.
func withHouseStyle(s *setup) { s.engine.Styles = []core.Style{houseStyle} }

// easel runs "/easel path" as from in channel and returns its answer.
func (h *harness) easel(from discordtest.User, channel, path string, opts ...discordtest.Option) string {
	h.t.Helper()
	return h.answer(h.srv.Command(h.t, from, channel, "easel "+path, opts...))
}

// answer waits for the answer to an /easel command and returns it,
// checking that only its user sees it: a deferred response flagged
// ephemeral from the start, edited once the command is done.
func (h *harness) answer(ic discordtest.Interaction) string {
	h.t.Helper()
	srv := h.srv
	srv.Wait(h.t, "the answer to /easel", func() bool {
		m, ok := srv.GetMessage(srv.GetInteraction(ic.ID).Original)
		return ok && m.Flags&discordtest.FlagLoading == 0
	})
	got := srv.GetInteraction(ic.ID)
	m, _ := srv.GetMessage(got.Original)
	if got.AckType != discordtest.CallbackDeferredMessage || !m.Ephemeral() || got.AckLatency() > discordtest.InteractionDeadline {
		h.t.Errorf("/easel answered with type %d after %s, ephemeral %v; want an ephemeral deferred message within 3s",
			got.AckType, got.AckLatency(), m.Ephemeral())
	}
	return m.Content
}

// styles returns the names of the styles of the fake's guild.
func (h *harness) styles() []string {
	h.t.Helper()
	all, err := h.engine.Styles(context.Background(), core.Message{Platform: discord.Platform, Workspace: h.srv.Guild})
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	return names
}

// wantIn fails the test unless text holds each of want.
func wantIn(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s = %q, want it to say %q", what, text, w)
		}
	}
}

// /easel is registered beside /imagine and /describe with its two groups.
func TestEaselIsRegistered(t *testing.T) {
	t.Parallel()
	h := start(t)
	i := slices.IndexFunc(h.srv.Commands(h.srv.Guild), func(c discordtest.Command) bool { return c.Name == "easel" })
	cmd := h.srv.Commands(h.srv.Guild)[i]
	var subs []string
	for _, g := range cmd.Options {
		for _, s := range g.Options {
			var opts []string
			for _, o := range s.Options {
				name := o.Name
				if o.Autocomplete {
					name += "*"
				}
				opts = append(opts, name)
			}
			subs = append(subs, g.Name+" "+s.Name+"("+strings.Join(opts, ",")+")")
		}
	}
	want := []string{"style set(name,definition,reference,reference2,reference3,reference4)", "style list()", "style delete(name*)",
		"channel set(style*,model,aspect,quality,scope)", "channel show()", "channel clear(scope)"}
	if !slices.Equal(subs, want) {
		t.Errorf("/easel subcommands %q, want %q", subs, want)
	}
}

// Admins define, replace and delete styles; anyone lists them; members
// who try to change them are told only admins may, and nothing changes. A
// style of the config cannot be replaced or deleted from chat. Every
// answer is seen only by who asked.
func TestStyleCommands(t *testing.T) {
	t.Parallel()
	h := start(t, withHouseStyle)
	srv := h.srv
	ada, bob := admin(srv), srv.Bob
	brand := []discordtest.Option{{Name: "name", Value: "brand"}, {Name: "definition", Value: "flat vector art, brand colours --ar 16:9"}}

	wantIn(t, "a member's style set", h.easel(bob, srv.Channel, "style set", brand...), "🔒", "only an Easel admin can change styles")
	wantIn(t, "a member's style delete", h.easel(bob, srv.Channel, "style delete", discordtest.Option{Name: "name", Value: "house"}),
		"only an Easel admin")
	if got := h.styles(); !slices.Equal(got, []string{"house"}) {
		t.Fatalf("styles after a member tried %q, want only the config's", got)
	}

	wantIn(t, "style set", h.easel(ada, srv.Channel, "style set", brand...),
		"✅ Style `brand` saved", "`flat vector art, brand colours --ar 16:9`", "/imagine style:brand")
	wantIn(t, "style set again", h.easel(ada, srv.Channel, "style set", brand...), "✅ Style `brand` replaced")
	wantIn(t, "a member's style list", h.easel(bob, srv.Channel, "style list"),
		"Styles here (2)", "`brand` — `flat vector art, brand colours --ar 16:9`", "`house` — `in the house look --quality medium` · from Easel's config")

	wantIn(t, "a config style's name", h.easel(ada, srv.Channel, "style set",
		discordtest.Option{Name: "name", Value: "House"}, discordtest.Option{Name: "definition", Value: "something else"}),
		"❌", "the name house is taken by a style in Easel's config")
	wantIn(t, "deleting a config style", h.easel(ada, srv.Channel, "style delete", discordtest.Option{Name: "name", Value: "house"}),
		"defined in Easel's config")
	wantIn(t, "a style of request flags", h.easel(ada, srv.Channel, "style set",
		discordtest.Option{Name: "name", Value: "many"}, discordtest.Option{Name: "definition", Value: "art --n 4"}),
		"a style can't set --n")

	wantIn(t, "style delete", h.easel(ada, srv.Channel, "style delete", discordtest.Option{Name: "name", Value: "brand"}),
		"🗑️ Style `brand` deleted")
	wantIn(t, "style delete again", h.easel(ada, srv.Channel, "style delete", discordtest.Option{Name: "name", Value: "brand"}),
		"there is no style named \"brand\"", "the styles here are house")
	if got := h.styles(); !slices.Equal(got, []string{"house"}) {
		t.Errorf("styles at the end %q, want only the config's", got)
	}
	for _, m := range srv.Messages(srv.Channel) {
		if !m.Ephemeral() {
			t.Errorf("/easel posted %q for everyone to see", m.Content)
		}
	}
}

// /easel is recorded in the inbox before it is acknowledged, like the
// other commands, and none is left once answered.
func TestEaselIsRecordedFirst(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	log := &orderLog{srv: s.srv}
	s.events = func(l discord.EventLog) discord.EventLog { log.EventLog, log.db = l, l.(*storage.DB); return log }
	h := launch(t, s)
	ic := h.srv.Command(t, admin(h.srv), h.srv.Channel, "easel style set",
		discordtest.Option{Name: "name", Value: "brand"}, discordtest.Option{Name: "definition", Value: "flat art"})
	wantIn(t, "style set", h.answer(ic), "✅")
	if early, late := log.recorded(); !slices.Equal(early, []string{"discord:" + ic.ID}) || len(late) != 0 {
		t.Errorf("recorded before the ack: %q; after: %q; want the command, before", early, late)
	}
	h.srv.Wait(t, "the inbox to empty", func() bool {
		left, err := h.db.Unhandled(context.Background())
		return err == nil && len(left) == 0
	})
}

// A reference image goes through the checks of any attachment and is kept
// with the style; a file that is no image, or too large, is refused with
// its name, and nothing is stored.
func TestStyleReferences(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	ada := admin(srv)
	set := func(name string, refs ...discordtest.Attachment) string {
		opts := []discordtest.Option{{Name: "name", Value: name}, {Name: "definition", Value: "like these"}}
		for i, r := range refs {
			opt := "reference"
			if i > 0 {
				opt += string(rune('1' + i))
			}
			opts = append(opts, discordtest.Option{Name: opt, Value: r})
		}
		return h.easel(ada, srv.Channel, "style set", opts...)
	}
	wantIn(t, "two references", set("refs", srv.Upload("a.png", "image/png", testPNG(1)), srv.Upload("b.png", "image/png", testPNG(2))),
		"✅ Style `refs` saved", "2 reference images")
	all, _ := h.engine.Styles(context.Background(), core.Message{Platform: discord.Platform, Workspace: srv.Guild})
	if len(all) != 1 || len(all[0].Refs) != 2 {
		t.Fatalf("stored %+v, want one style with two references", all)
	}

	text := srv.Upload("notes.txt", "text/plain", []byte("not an image at all"))
	wantIn(t, "a text file", set("text", text), "❌", "notes.txt")
	huge := srv.Upload("huge.png", "image/png", testPNG(3))
	huge.Size = 30 << 20
	wantIn(t, "a 30 MB file", set("huge", huge), "❌", "huge.png is 30.0 MB")
	if got := h.styles(); !slices.Equal(got, []string{"refs"}) {
		t.Errorf("styles %q after refused references, want only refs", got)
	}
}

// imagine runs /imagine as from in channel and returns the provider's
// request for it once its image is posted, and the session's thread.
func (h *harness) imagine(from discordtest.User, channel string, opts ...discordtest.Option) (core.GenerateRequest, string) {
	h.t.Helper()
	before := len(h.gen.Requests())
	ic := h.srv.Command(h.t, from, channel, "imagine", opts...)
	h.srv.Wait(h.t, "the deferred response", func() bool { return h.srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(h.srv.GetInteraction(ic.ID).Original)
	h.waitResults(thread, 1)
	return h.gen.Requests()[before], thread
}

// An admin sets a category's defaults from one of its channels, and they
// apply to a new /imagine in another of its channels: the default style's
// words and flags and the defaults' quality. A channel's own defaults win
// over its category's; cleared, the category's apply again. Anyone sees
// which apply; members cannot change them.
func TestChannelDefaults(t *testing.T) {
	t.Parallel()
	var cat, posters, flyers string
	h := start(t, func(s *setup) {
		cat = s.srv.AddCategory(s.srv.Guild, "art")
		posters = s.srv.AddChannel(s.srv.Guild, "posters", cat)
		flyers = s.srv.AddChannel(s.srv.Guild, "flyers", cat)
	})
	srv := h.srv
	ada := admin(srv)
	h.easel(ada, posters, "style set", discordtest.Option{Name: "name", Value: "brand"},
		discordtest.Option{Name: "definition", Value: "flat vector art --ar 16:9"})

	wantIn(t, "show before any", h.easel(srv.Bob, flyers, "channel show"), "No defaults apply here")
	wantIn(t, "a member's channel set", h.easel(srv.Bob, posters, "channel set", discordtest.Option{Name: "quality", Value: "low"}),
		"🔒", "only an Easel admin can change channel defaults")
	wantIn(t, "set with nothing", h.easel(ada, posters, "channel set"), "give at least one of style, model, aspect and quality")
	wantIn(t, "a category set from a channel in none", h.easel(ada, srv.Channel, "channel set",
		discordtest.Option{Name: "quality", Value: "low"}, discordtest.Option{Name: "scope", Value: "category"}),
		"this channel is in no category")
	wantIn(t, "an unknown default style", h.easel(ada, posters, "channel set", discordtest.Option{Name: "style", Value: "nope"},
		discordtest.Option{Name: "scope", Value: "category"}), "there is no style named \"nope\"")

	wantIn(t, "category set", h.easel(ada, posters, "channel set", discordtest.Option{Name: "style", Value: "brand"},
		discordtest.Option{Name: "quality", Value: "high"}, discordtest.Option{Name: "scope", Value: "category"}),
		"✅ Defaults of this channel's category (<#"+cat+">): `--style brand --quality high`")
	wantIn(t, "show in a sibling channel", h.easel(srv.Bob, flyers, "channel show"),
		"set on this channel's category (<#"+cat+">): `--style brand --quality high`")
	req, _ := h.imagine(srv.Alice, flyers, discordtest.Option{Name: "prompt", Value: "a fox"})
	if req.Prompt != "a fox, flat vector art" || req.Flags.Quality != "high" || req.Flags.Aspect != "16:9" {
		t.Errorf("/imagine in the category: %q %+v, want the default style's words, its aspect and the quality", req.Prompt, req.Flags)
	}

	wantIn(t, "channel set", h.easel(ada, flyers, "channel set", discordtest.Option{Name: "quality", Value: "low"}),
		"✅ Defaults of this channel (<#"+flyers+">): `--quality low`")
	req, _ = h.imagine(srv.Alice, flyers, discordtest.Option{Name: "prompt", Value: "a hare"})
	if req.Prompt != "a hare" || req.Flags.Quality != "low" {
		t.Errorf("/imagine with the channel's own defaults: %q %+v, want them only", req.Prompt, req.Flags)
	}
	req, _ = h.imagine(srv.Alice, flyers, discordtest.Option{Name: "prompt", Value: "an owl"}, discordtest.Option{Name: "quality", Value: "medium"})
	if req.Flags.Quality != "medium" {
		t.Errorf("/imagine with its own quality got %q, want the request's to win", req.Flags.Quality)
	}
	wantIn(t, "channel clear", h.easel(ada, flyers, "channel clear"), "🧹 Defaults of this channel (<#"+flyers+">) cleared")
	req, _ = h.imagine(srv.Alice, flyers, discordtest.Option{Name: "prompt", Value: "a stoat"})
	if req.Prompt != "a stoat, flat vector art" || req.Flags.Quality != "high" {
		t.Errorf("/imagine after the channel's defaults were cleared: %q %+v, want the category's", req.Prompt, req.Flags)
	}
	wantIn(t, "category clear", h.easel(ada, posters, "channel clear", discordtest.Option{Name: "scope", Value: "category"}),
		"cleared")
	wantIn(t, "show after both cleared", h.easel(srv.Bob, flyers, "channel show"), "No defaults apply here")
}

// Styles and defaults set in chat outlive the bot: a new process on the
// same store lists them and applies them.
func TestStylesSurviveARestart(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	h := launch(t, s)
	srv := h.srv
	ada := admin(srv)
	h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: "brand"},
		discordtest.Option{Name: "definition", Value: "flat vector art"})
	h.easel(ada, srv.Channel, "channel set", discordtest.Option{Name: "style", Value: "brand"})
	h.stop(10 * time.Second)

	h = launch(t, s)
	wantIn(t, "style list after a restart", h.easel(srv.Bob, srv.Channel, "style list"), "`brand` — `flat vector art`")
	if req, _ := h.imagine(srv.Alice, srv.Channel, discordtest.Option{Name: "prompt", Value: "a fox"}); req.Prompt != "a fox, flat vector art" {
		t.Errorf("/imagine after a restart: %q, want the channel's default style", req.Prompt)
	}
}

// suggest types typed in option focused of command name as from in
// channel and returns the style names Easel offers, in order, checking
// that the answer came within Discord's 3 seconds.
func (h *harness) suggest(from discordtest.User, channel, name, focused, typed string, opts ...discordtest.Option) []string {
	h.t.Helper()
	ic := h.srv.Autocomplete(h.t, from, channel, name, focused, append(opts, discordtest.Option{Name: focused, Value: typed})...)
	return h.suggested(ic)
}

// suggested waits for an autocomplete's answer and returns its values.
func (h *harness) suggested(ic discordtest.Interaction) []string {
	h.t.Helper()
	h.srv.Wait(h.t, "the autocomplete's answer", func() bool { return h.srv.GetInteraction(ic.ID).AckType != 0 })
	got := h.srv.GetInteraction(ic.ID)
	if got.AckType != discordtest.CallbackAutocomplete || got.AckLatency() > discordtest.InteractionDeadline {
		h.t.Errorf("autocomplete answered with type %d after %s, want type 8 within 3s", got.AckType, got.AckLatency())
	}
	names := []string{}
	for _, c := range got.Choices {
		names = append(names, c.Value.(string))
	}
	return names
}

// The style options of /easel offer the styles whose names match what is
// typed: the channel's default style first, then names that start with
// it, then names that hold it; at most 25; for style delete only those
// set in chat. With no styles, none; to a user who may not use Easel
// there, none.
func TestStyleAutocomplete(t *testing.T) {
	t.Parallel()
	h := start(t, withHouseStyle, func(s *setup) { s.engine.Access.Users = []string{s.srv.Alice.ID} })
	srv := h.srv
	ada := admin(srv)
	ada.ID = srv.Alice.ID // Alice, as an admin: the one user Access allows
	if got := h.suggest(ada, srv.Channel, "easel style delete", "name", ""); len(got) != 0 {
		t.Errorf("with no styles set in chat, style delete offers %q", got)
	}
	for _, name := range []string{"brand", "neon", "cobra", "brand-dark"} {
		h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: name},
			discordtest.Option{Name: "definition", Value: name + " look"})
	}
	for _, tc := range []struct {
		cmd, option, typed string
		want               []string
	}{
		{"easel style delete", "name", "", []string{"brand", "brand-dark", "cobra", "neon"}},
		{"easel style delete", "name", "BRA", []string{"brand", "brand-dark", "cobra"}},
		{"easel channel set", "style", "", []string{"brand", "brand-dark", "cobra", "house", "neon"}},
		{"easel channel set", "style", "n", []string{"neon", "brand", "brand-dark"}},
		{"easel channel set", "style", "zzz", []string{}},
	} {
		if got := h.suggest(ada, srv.Channel, tc.cmd, tc.option, tc.typed); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s typed %q: offered %q, want %q", tc.cmd, tc.option, tc.typed, got, tc.want)
		}
	}
	h.easel(ada, srv.Channel, "channel set", discordtest.Option{Name: "style", Value: "cobra"})
	if got := h.suggest(ada, srv.Channel, "easel channel set", "style", "bra"); !slices.Equal(got, []string{"cobra", "brand", "brand-dark"}) {
		t.Errorf("with cobra the channel's default: offered %q, want it first", got)
	}
	ic := srv.Autocomplete(t, ada, srv.Channel, "easel channel set", "style", discordtest.Option{Name: "style", Value: "c"})
	h.suggested(ic)
	if c := srv.GetInteraction(ic.ID).Choices; len(c) == 0 || c[0].Name != "cobra (default here) — cobra look" {
		t.Errorf("the default's choice %+v, want its name, that it is the default, and its words", c)
	}
	if got := h.suggest(srv.Bob, srv.Channel, "easel channel set", "style", ""); len(got) != 0 {
		t.Errorf("a user who may not use Easel was offered %q", got)
	}
	for i := range 30 {
		h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: "many-" + string(rune('a'+i%26)) + string(rune('a'+i/26))},
			discordtest.Option{Name: "definition", Value: "one of many"})
	}
	if got := h.suggest(ada, srv.Channel, "easel style delete", "name", "many"); len(got) != 25 {
		t.Errorf("30 matching styles: %d offered, want 25", len(got))
	}
}

// stuckStyles is an engine whose SetStyle waits until the bot stops, as a
// process does that dies between acknowledging /easel and acting on it.
type stuckStyles struct {
	discord.Engine
	sets chan string
}

func (e *stuckStyles) SetStyle(ctx context.Context, _ core.Message, name, _ string, _ []core.Image) (core.Style, bool, error) {
	e.sets <- name
	<-ctx.Done()
	return core.Style{}, false, ctx.Err()
}

// An /easel the previous process acknowledged but did not act on is
// handled on the next start, and answered, still only to its user.
func TestEaselLeftByAStopIsHandled(t *testing.T) {
	t.Parallel()
	s := defaults(t)
	s.unpaced = true
	stuck := &stuckStyles{sets: make(chan string, 1)}
	s.wrap = func(e discord.Engine) discord.Engine { stuck.Engine = e; return stuck }
	h := launch(t, s)
	ic := h.srv.Command(t, admin(h.srv), h.srv.Channel, "easel style set",
		discordtest.Option{Name: "name", Value: "brand"}, discordtest.Option{Name: "definition", Value: "flat art"})
	<-stuck.sets
	h.stop(time.Second)
	s.wrap = nil

	h = launch(t, s)
	wantIn(t, "the replayed /easel", h.answer(ic), "✅ Style `brand` saved")
	if got := h.styles(); !slices.Equal(got, []string{"brand"}) {
		t.Errorf("styles %q after the replay, want brand", got)
	}
}

// /imagine style:NAME applies the style: its words after the prompt, its
// flags under the request's own, its reference images as inputs; the
// thread, starter and caption show the prompt as typed.
func TestImagineWithAStyle(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	h.easel(admin(srv), srv.Channel, "style set", discordtest.Option{Name: "name", Value: "brand"},
		discordtest.Option{Name: "definition", Value: "flat vector art, brand colours --ar 16:9 --quality high"},
		discordtest.Option{Name: "reference", Value: srv.Upload("logo.png", "image/png", testPNG(7))})
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"},
		discordtest.Option{Name: "quality", Value: "low"}, discordtest.Option{Name: "style", Value: "Brand"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	r := h.waitResults(thread, 1)[0]
	req := h.gen.Requests()[0]
	if req.Prompt != "a fox, flat vector art, brand colours" || req.Flags.Aspect != "16:9" || req.Flags.Quality != "low" {
		t.Errorf("request %q %+v, want the style's words and aspect, and the request's own quality", req.Prompt, req.Flags)
	}
	if len(req.Inputs) != 1 || !bytes.Equal(req.Inputs[0].Data, testPNG(7)) {
		t.Errorf("request inputs %d, want the style's reference image", len(req.Inputs))
	}
	ch, _ := srv.GetChannel(thread)
	if ch.Name != "🎨 a fox" || !strings.HasPrefix(r.Content, "v1 · “a fox”") {
		t.Errorf("thread %q and caption %q, want the prompt as typed", ch.Name, r.Content)
	}
}

// An /imagine with a style that does not exist is refused with a note
// only its user sees, naming the styles there; no thread is started and
// nothing reaches the provider.
func TestImagineWithAnUnknownStyle(t *testing.T) {
	t.Parallel()
	h := start(t, withHouseStyle)
	srv := h.srv
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"},
		discordtest.Option{Name: "style", Value: "nope"})
	srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	got := srv.GetInteraction(ic.ID)
	note, _ := srv.GetMessage(got.Followups[0])
	if !note.Ephemeral() {
		t.Errorf("the note %q is seen by everyone", note.Content)
	}
	wantIn(t, "the note", note.Content, "❌", "there is no style named \"nope\"", "the styles here are house")
	if orig, _ := srv.GetMessage(got.Original); !orig.Deleted {
		t.Error("the deferred response was left behind")
	}
	if th := srv.Threads(srv.Channel); len(th) != 0 || h.gen.Calls.Load() != 0 {
		t.Errorf("threads %v and %d jobs for a refused command", th, h.gen.Calls.Load())
	}
}

// /imagine's style option offers the styles, the config's too, the
// channel's default first: in a thread, its parent channel's.
func TestImagineStyleAutocomplete(t *testing.T) {
	t.Parallel()
	h := start(t, withHouseStyle)
	srv := h.srv
	ada := admin(srv)
	if got := h.suggest(srv.Alice, srv.Channel, "imagine", "style", "z"); len(got) != 0 {
		t.Errorf("no style matches, yet %q offered", got)
	}
	h.easel(ada, srv.Channel, "style set", discordtest.Option{Name: "name", Value: "neon"},
		discordtest.Option{Name: "definition", Value: "neon glow"})
	h.easel(ada, srv.Channel, "channel set", discordtest.Option{Name: "style", Value: "neon"})
	prompt := discordtest.Option{Name: "prompt", Value: "a fox"}
	if got := h.suggest(srv.Alice, srv.Channel, "imagine", "style", "", prompt); !slices.Equal(got, []string{"neon", "house"}) {
		t.Errorf("offered %q, want the channel's default first", got)
	}
	req, thread := h.imagine(srv.Alice, srv.Channel, prompt)
	if req.Prompt != "a fox, neon glow" {
		t.Errorf("request %q, want the default style's words", req.Prompt)
	}
	if got := h.suggest(srv.Alice, thread, "imagine", "style", "", prompt); !slices.Equal(got, []string{"neon", "house"}) {
		t.Errorf("in a session thread offered %q, want its channel's default first", got)
	}
}
