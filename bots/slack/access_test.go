package slack

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
)

// Phrases of the refusals, from core.Access.Check.
const (
	noDMs       = "doesn't take direct messages"
	noWorkspace = "isn't enabled in this workspace"
	noChannel   = "isn't enabled in this channel"
	noUser      = "you don't have access to Easel"
)

// accessHarness is a harness whose engine applies access and admins.
func accessHarness(t *testing.T, access core.Access, admins ...string) *harness {
	t.Helper()
	return newHarness(t, options{engine: core.EngineConfig{Access: access, Admins: admins}})
}

// refusedCommand runs the slash command as user in channel and checks that
// the refusal saying want came back through the command's response URL.
func (h *harness) refusedCommand(user, channel, want string) {
	h.t.Helper()
	before := len(h.fake.Ephemerals())
	h.deliver(h.fake.SlashCommand(user, channel, "a fox"))
	if e := h.note(before, user, want); !e.ResponseURL {
		h.t.Errorf("refusal %+v, want it through the response URL", e)
	}
}

// refusedPost posts text with an image attached as user in channel (of
// type kind: "channel" or "im"; a reply when threadTS is set) and checks
// that the refusal saying want was shown to user alone, in the post's
// thread.
func (h *harness) refusedPost(user, channel, kind, threadTS, text, want string) {
	h.t.Helper()
	before := len(h.fake.Ephemerals())
	f := h.fake.AddFile(user, "in.png", "image/png", testPNG(7))
	ts, envs := h.fake.Post(slacktest.Post{Channel: channel, ChannelType: kind, User: user, Text: text, ThreadTS: threadTS,
		Files: []slacktest.File{f}})
	h.deliver(envs...)
	if e := h.note(before, user, want); e.Channel != channel || e.ThreadTS != either(threadTS, ts) {
		h.t.Errorf("refusal %+v, want it in %s under %s", e, channel, either(threadTS, ts))
	}
}

// refusedPress presses a button as user and checks that the refusal saying
// want was shown to user alone.
func (h *harness) refusedPress(user, channel, ts, action, want string) {
	h.t.Helper()
	before := len(h.fake.Ephemerals())
	h.deliver(h.fake.Click(h.t, user, channel, ts, action))
	if e := h.note(before, user, want); e.Channel != channel {
		h.t.Errorf("refusal %+v, want it in %s", e, channel)
	}
}

// note waits for an ephemeral message to user, after the first before,
// saying want with the 🔒 sign, and returns it.
func (h *harness) note(before int, user, want string) slacktest.Ephemeral {
	h.t.Helper()
	var found slacktest.Ephemeral
	h.fake.WaitFor(h.t, "a note to "+user+" saying "+want, func() bool {
		for _, e := range h.fake.Ephemerals()[before:] {
			if e.User == user && strings.Contains(e.Text, want) {
				found = e
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(found.Text, "🔒 ") {
		h.t.Errorf("note %q lacks the 🔒 sign", found.Text)
	}
	return found
}

// costNothing checks that the refused requests cost nothing: they never
// reached the engine's Handle, and Easel posted no message, added no
// reaction, downloaded no file, uploaded nothing, called no provider and
// stored no session.
func (h *harness) costNothing() {
	h.t.Helper()
	if n := h.engine.handles.Load(); n != 0 {
		h.t.Errorf("%d refused requests reached Handle", n)
	}
	for _, method := range []string{"chat.postMessage", "reactions.add", "download", "files.getUploadURLExternal", "users.info"} {
		if calls := h.fake.Calls(method); len(calls) != 0 {
			h.t.Errorf("%d calls to %s", len(calls), method)
		}
	}
	if n := h.gen.Calls.Load(); n != 0 {
		h.t.Errorf("%d provider calls", n)
	}
	if sessions, err := h.db.Sessions(context.Background()); err != nil || len(sessions) != 0 {
		h.t.Errorf("%d sessions stored (%v)", len(sessions), err)
	}
}

func TestAccessWorkspaces(t *testing.T) {
	h := accessHarness(t, core.Access{Workspaces: []string{"T0OTHER"}})
	h.refusedCommand(ana, "C1", noWorkspace)
	h.refusedPost(bob, "C1", "channel", "", "<@"+h.fake.BotUserID+"> a fox", noWorkspace)
	h.refusedPost(ana, "D1", "im", "", "a fox", noWorkspace)
	h.costNothing()

	h2 := accessHarness(t, core.Access{Workspaces: []string{"T0OTHER", h.fake.TeamID}})
	h2.slash(ana, "C1", "a fox")
	h2.images(1)
}

func TestAccessChannels(t *testing.T) {
	h := accessHarness(t, core.Access{Channels: []string{"C2"}})
	h.refusedCommand(ana, "C1", noChannel)
	h.refusedPost(bob, "C1", "channel", "", "<@"+h.fake.BotUserID+"> a fox", noChannel)
	h.costNothing()

	// The listed channel works, and so do DMs, which are not channels.
	root := h.slash(ana, "C2", "a fox")
	h.images(1)
	_, envs := h.fake.Post(slacktest.Post{Channel: "C2", User: bob, Text: "make it blue", ThreadTS: root})
	h.deliver(envs...)
	h.images(2)
	_, envs = h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: bob, Text: "a kite"})
	h.deliver(envs...)
	h.images(3)
}

func TestAccessUsers(t *testing.T) {
	h := accessHarness(t, core.Access{Users: []string{ana}})
	h.refusedCommand(bob, "C1", noUser)
	h.refusedPost(bob, "C1", "channel", "", "<@"+h.fake.BotUserID+"> a fox", noUser)
	h.refusedPost(bob, "D1", "im", "", "a fox", noUser)
	h.costNothing()

	// Ana's session: Bob's reply in its thread and Bob's button presses
	// are refused too, before reaching the engine.
	root := h.slash(ana, "C1", "a teapot")
	h.images(1)
	b1, _ := h.buttons("C1", root, 1)
	h.settle()
	handles := h.engine.handles.Load()
	h.refusedPost(bob, "C1", "channel", root, "make it blue", noUser)
	h.refusedPress(bob, "C1", b1, "regenerate", noUser)
	h.settle()
	if n := h.engine.handles.Load(); n != handles {
		t.Errorf("%d refused requests in Ana's thread reached Handle", n-handles)
	}
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("%d provider calls, want only Ana's", n)
	}
	for _, r := range h.fake.Replies("C1", root) {
		if len(r.Reactions) > 0 && r.User == bob {
			t.Errorf("Bob's refused reply got reactions %v", r.Reactions)
		}
	}
	if calls := h.fake.Calls("download"); len(calls) != 0 {
		t.Errorf("%d downloads of refused attachments", len(calls))
	}
}

func TestAccessDMsOff(t *testing.T) {
	h := accessHarness(t, core.Access{DisableDMs: true})
	h.refusedPost(ana, "D1", "im", "", "a fox", noDMs)
	h.refusedCommand(bob, "D2", noDMs)
	h.costNothing()
	h.slash(ana, "C1", "a fox")
	h.images(1)
}

func TestAccessRolesDoNotApplyToSlack(t *testing.T) {
	h := accessHarness(t, core.Access{Roles: []string{"555000000000000001"}})
	h.slash(ana, "C1", "a fox")
	h.images(1)
}

func TestAccessAdminsPass(t *testing.T) {
	h := accessHarness(t, core.Access{Workspaces: []string{"T0OTHER"}, Channels: []string{"C2"}, Users: []string{"U0NOBODY"},
		DisableDMs: true}, bob)
	h.slash(bob, "C1", "a fox")
	h.images(1)
	_, envs := h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: bob, Text: "a kite"})
	h.deliver(envs...)
	h.images(2)
	h.refusedCommand(ana, "C1", noWorkspace)
}
