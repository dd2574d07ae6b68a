package slack

import (
	"net/http"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
)

// brand is the config's style in these tests.
var brand = core.Style{Name: "brand", Prompt: "flat vector art, navy and gold", Flags: core.Flags{Quality: "high"}}

// styled returns a harness whose admin is ana, with the config style brand.
func styled(t *testing.T, o options) *harness {
	t.Helper()
	o.engine.Admins = []string{ana}
	o.engine.Styles = []core.Style{brand}
	return newHarness(t, o)
}

// style runs StyleCommand with text as user in channel and returns the
// answer shown to user alone.
func (h *harness) style(user, channel, text string) string {
	h.t.Helper()
	before := len(h.answers(user))
	h.deliver(h.fake.Slash(StyleCommand, user, channel, text))
	var got []slacktest.Ephemeral
	h.fake.WaitFor(h.t, "the answer to "+StyleCommand+" "+text, func() bool {
		got = h.answers(user)
		return len(got) > before
	})
	if len(got) != before+1 {
		h.t.Fatalf("%d answers to one command", len(got)-before)
	}
	return got[before].Text
}

// answers returns the messages shown to user alone through a command's
// response URL.
func (h *harness) answers(user string) []slacktest.Ephemeral {
	var out []slacktest.Ephemeral
	for _, e := range h.fake.Ephemerals() {
		if e.User == user && e.ResponseURL {
			out = append(out, e)
		}
	}
	return out
}

// has fails the test unless text contains every one of want.
func has(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s %q lacks %q", what, text, w)
		}
	}
}

// quiet fails the test if the bot posted anything in channel or anything
// reached the engine's Handle.
func (h *harness) quiet(channel string) {
	h.t.Helper()
	for _, m := range h.fake.Messages(channel) {
		if m.BotID != "" {
			h.t.Errorf("message %q posted in %s", m.Text, channel)
		}
	}
	if n := h.engine.handles.Load(); n != 0 {
		h.t.Errorf("%d requests reached the engine", n)
	}
}

// Anyone lists the styles; only an admin adds, replaces and deletes them;
// a config style's name is taken and the config's style stays; every
// answer is shown to its asker alone and nothing is posted.
func TestStyleCommandManagesStyles(t *testing.T) {
	h := styled(t, options{})
	list := h.style(bob, "C1", "")
	has(t, "list", list, "*brand*: `flat vector art, navy and gold --quality high` · from config", "--style NAME", "`"+StyleCommand+" help`")
	if strings.Contains(list, "defaults") {
		t.Errorf("list %q shows defaults the channel does not have", list)
	}

	has(t, "a non-admin's set", h.style(bob, "C1", "set noir black and white film still"), "🔒", "only an Easel admin can change styles")
	has(t, "set", h.style(ana, "C1", "set Noir black and white film still, grain --ar 16:9"),
		"✅ Style *noir* created: `black and white film still, grain --ar 16:9`", "`/imagine … --style noir`")
	has(t, "set again", h.style(ana, "C1", "set noir black and white film still --quality low"),
		"✅ Style *noir* replaced: `black and white film still --quality low`")
	has(t, "set over the config's", h.style(ana, "C1", "set brand pastel"), "❌", "taken by a style in Easel's config")
	has(t, "help", h.style(bob, "C1", "help"),
		"• *brand*: `flat vector art, navy and gold --quality high` · from config",
		"• *noir*: `black and white film still --quality low` · set by <@"+ana+"> on <!date^",
		"`"+StyleCommand+" delete NAME`", "`"+StyleCommand+" channel`")

	has(t, "a non-admin's delete", h.style(bob, "C1", "delete noir"), "🔒")
	has(t, "delete", h.style(ana, "C1", "delete noir"), "🗑️ Style *noir* deleted.")
	has(t, "delete again", h.style(ana, "C1", "delete noir"), "❌", `there is no style named "noir"; the styles here are brand`)
	has(t, "delete the config's", h.style(ana, "C1", "delete brand"), "❌", "defined in Easel's config")
	if list := h.style(bob, "C1", "list"); strings.Contains(list, "noir") {
		t.Errorf("list %q after the delete", list)
	}
	h.quiet("C1")
}

// Mistakes in the command itself get a usage note.
func TestStyleCommandUsage(t *testing.T) {
	h := styled(t, options{})
	for text, want := range map[string]string{
		"rename brand bold": "takes list, set, delete or channel",
		"set":               "name the style and give its words and flags",
		"set solo":          "the style solo is empty",
		"set 1/2 words":     `"1/2" is not a style name`,
		"delete":            "name one style to delete",
		"delete a b":        "name one style to delete",
		"set x a fox --n 2": "a style can't set --n",
	} {
		has(t, text, h.style(ana, "C1", text), "❌", want)
	}
	h.quiet("C1")
}

// A request's --style adds the style's words and flags; an unknown style
// is told to its asker alone and starts nothing.
func TestImagineWithAStyle(t *testing.T) {
	h := styled(t, options{})
	h.style(ana, "C1", "set noir black and white film still --ar 16:9")
	h.slash(bob, "C1", "a fox --style noir")
	h.images(1)
	req := h.gen.Requests()[0]
	if req.Prompt != "a fox, black and white film still" || req.Flags.Aspect != "16:9" {
		t.Errorf("provider got %q %+v, want the style's words and flags", req.Prompt, req.Flags)
	}
	h.slash(bob, "C1", "a kite --style brand --quality low")
	h.images(2)
	if req := h.gen.Requests()[1]; req.Prompt != "a kite, flat vector art, navy and gold" || req.Flags.Quality != "low" {
		t.Errorf("provider got %q %+v, want the config style's words and the request's own quality", req.Prompt, req.Flags)
	}

	h.deliver(h.fake.SlashCommand(bob, "C1", "a fox --style nope"))
	e := h.ephemeral(bob, `there is no style named "nope"; the styles here are brand, noir`)
	if !e.ResponseURL || !strings.HasPrefix(e.Text, "❌ ") {
		t.Errorf("the unknown style was told as %+v", e)
	}
	h.settle()
	if n := h.engine.handles.Load(); n != 2 {
		t.Errorf("%d requests reached the engine, want 2 (not the unknown style's)", n)
	}
	for _, m := range h.fake.Messages("C1") {
		if strings.Contains(m.Text, "nope") {
			t.Errorf("message %q posted for a refused request", m.Text)
		}
	}
}

// An admin's channel defaults apply to the new images of that channel
// only; anyone sees them; only an admin changes them.
func TestChannelDefaultsApplyToNewImages(t *testing.T) {
	h := styled(t, options{})
	has(t, "no defaults", h.style(bob, "C1", "channel"), "This channel has no defaults")
	has(t, "a non-admin's defaults", h.style(bob, "C1", "channel --quality low"), "🔒")
	has(t, "set", h.style(ana, "C1", "channel --style brand --ar 3:2"),
		"✅ New images in this channel now start with `--style brand --ar 3:2`")
	has(t, "show", h.style(bob, "C1", "channel"), "`--style brand --ar 3:2` · set by <@"+ana+">")
	has(t, "list", h.style(bob, "C1", "list"), "*This channel's defaults* for new images: `--style brand --ar 3:2`")
	if list := h.style(bob, "C2", "list"); strings.Contains(list, "defaults") {
		t.Errorf("C2's list %q shows C1's defaults", list)
	}
	has(t, "bad defaults", h.style(ana, "C1", "channel --n 2"), "❌", "--n")
	has(t, "unknown style", h.style(ana, "C1", "channel --style nope"), "❌", `no style named "nope"`)

	h.slash(bob, "C1", "a kite")
	h.images(1)
	req := h.gen.Requests()[0]
	if req.Prompt != "a kite, flat vector art, navy and gold" || req.Flags.Aspect != "3:2" || req.Flags.Quality != "high" {
		t.Errorf("in C1 the provider got %q %+v, want the channel's style and aspect", req.Prompt, req.Flags)
	}
	h.slash(bob, "C2", "a kite")
	h.images(2)
	if req := h.gen.Requests()[1]; req.Prompt != "a kite" || req.Flags.Aspect != "" {
		t.Errorf("in C2 the provider got %q %+v, want no defaults", req.Prompt, req.Flags)
	}

	has(t, "a non-admin's clear", h.style(bob, "C1", "channel clear"), "🔒")
	has(t, "clear", h.style(ana, "C1", "channel clear"), "✅ This channel's defaults are cleared")
	has(t, "after the clear", h.style(bob, "C1", "channel"), "This channel has no defaults")
}

// A style set in chat is stored: a new process on the same data dir lists
// it and applies it.
func TestStylesSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	h := styled(t, options{dir: dir})
	h.style(ana, "C1", "set noir black and white film still")
	h.style(ana, "C1", "channel --quality low")
	h.stop()

	h = styled(t, options{dir: dir, fake: h.fake})
	has(t, "list after a restart", h.style(bob, "C1", "list"),
		"• *noir*: `black and white film still` · set by <@"+ana+">", "`--quality low` · set by <@"+ana+">")
	h.slash(bob, "C1", "a fox --style noir")
	h.images(1)
	if req := h.gen.Requests()[0]; req.Prompt != "a fox, black and white film still" || req.Flags.Quality != "low" {
		t.Errorf("provider got %q %+v after a restart", req.Prompt, req.Flags)
	}
}

// In http mode the command takes the same path: signed, recorded,
// answered at once, then told.
func TestStyleCommandOverHTTP(t *testing.T) {
	h := styled(t, options{http: true})
	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.Slash(StyleCommand, ana, "C1", "set noir grain"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("command answered %d", status)
	}
	h.ephemeral(ana, "✅ Style *noir* created")
	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.Slash(StyleCommand, bob, "C1", "list"), slacktest.Signing{Secret: "wrong"}); status != http.StatusUnauthorized {
		t.Errorf("a forged command answered %d", status)
	}
	h.quiet("C1")
}
