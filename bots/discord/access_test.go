package discord_test

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

// Routes of the fake whose calls a refused request must not make.
const (
	cdnRoute      = "GET /attachments/{channel_id}/{attachment_id}/{filename}"
	threadRoute   = "POST /channels/{channel_id}/messages/{message_id}/threads"
	reactionRoute = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"
	typingRoute   = "POST /channels/{channel_id}/typing"
)

// Phrases of the refusals, from core.Access.Check.
const (
	noDMs       = "doesn't take direct messages"
	noServer    = "isn't enabled in this server"
	noDMServer  = "not in direct messages"
	noChannel   = "isn't enabled in this channel"
	noRole      = "members with certain roles here"
	noDMRoles   = "which a direct message can't show"
	noUser      = "you don't have access to Easel"
	roleID      = "555000000000000001"
	otherRoleID = "555000000000000002"
)

// withAccess configures the engine's access rules and admins.
func withAccess(a core.Access, admins ...string) func(*setup) {
	return func(s *setup) { s.engine.Access, s.engine.Admins = a, admins }
}

// refusedCommand runs /imagine with an image attached as from in channel and
// checks that the only response is an ephemeral note containing want.
func refusedCommand(t *testing.T, h *harness, from discordtest.User, channel, want string) {
	t.Helper()
	srv := h.srv
	img := srv.Upload("in.png", "image/png", testPNG(1))
	ic := srv.Command(t, from, channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"},
		discordtest.Option{Name: "image", Value: img})
	srv.Wait(t, "the interaction's response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	refusedInteraction(t, h, srv.GetInteraction(ic.ID), want)
}

// refusedInteraction checks that an interaction was answered by an
// ephemeral note containing want, and by nothing else.
func refusedInteraction(t *testing.T, h *harness, got discordtest.Interaction, want string) {
	t.Helper()
	if got.AckType != discordtest.CallbackMessage {
		t.Fatalf("answered with callback type %d, want %d (an immediate message)", got.AckType, discordtest.CallbackMessage)
	}
	note, _ := h.srv.GetMessage(got.Original)
	if !note.Ephemeral() || !strings.Contains(note.Content, want) || !strings.HasPrefix(note.Content, "🔒 ") {
		t.Errorf("response %q (ephemeral %v), want an ephemeral note saying %q", note.Content, note.Ephemeral(), want)
	}
	if len(got.Followups) > 0 {
		t.Errorf("%d follow-ups after the note", len(got.Followups))
	}
}

// refusedMessage waits for Easel's silent reply to m containing want and
// returns it.
func refusedMessage(t *testing.T, h *harness, m discordtest.Message, want string) discordtest.Message {
	t.Helper()
	var note discordtest.Message
	h.srv.Wait(t, "the note replying to "+m.ID, func() bool {
		for _, r := range h.srv.Messages(m.ChannelID) {
			if r.Author.ID == h.srv.Bot.ID && r.Reference == m.ID {
				note = r
				return true
			}
		}
		return false
	})
	if !strings.Contains(note.Content, want) || !strings.HasPrefix(note.Content, "🔒 ") {
		t.Errorf("note %q, want it to say %q", note.Content, want)
	}
	if note.Flags&(1<<12) == 0 {
		t.Errorf("the note was sent with flags %b, want SUPPRESS_NOTIFICATIONS", note.Flags)
	}
	if len(note.Mentions) > 0 {
		t.Errorf("the note mentions %v, want no one", note.Mentions)
	}
	return note
}

// costNothing checks that nothing was spent on refused requests: no
// provider call, no session stored, no attachment downloaded, no thread
// started, no reaction, no typing indicator, nothing posted but the notes.
func costNothing(t *testing.T, h *harness) {
	t.Helper()
	if n := h.gen.Calls.Load(); n != 0 {
		t.Errorf("%d provider calls", n)
	}
	if sessions, err := h.db.Sessions(context.Background()); err != nil || len(sessions) != 0 {
		t.Errorf("%d sessions stored (%v)", len(sessions), err)
	}
	for _, route := range []string{cdnRoute, threadRoute, reactionRoute, typingRoute} {
		if calls := h.srv.Calls(route); len(calls) != 0 {
			t.Errorf("%d calls to %s", len(calls), route)
		}
	}
	for _, ch := range []string{h.srv.Channel, h.srv.DMChannel(h.srv.Alice), h.srv.DMChannel(h.srv.Bob)} {
		for _, m := range h.srv.Messages(ch) {
			if m.Author.ID == h.srv.Bot.ID && !m.Ephemeral() && !strings.HasPrefix(m.Content, "🔒 ") {
				t.Errorf("Easel posted %q in %s", m.Content, ch)
			}
		}
	}
}

// allowedCommand runs /imagine as from in channel, waits for its result and
// returns the session's thread.
func allowedCommand(t *testing.T, h *harness, from discordtest.User, channel string) string {
	t.Helper()
	ic := h.srv.Command(t, from, channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"})
	h.srv.Wait(t, "the deferred response", func() bool { return h.srv.GetInteraction(ic.ID).AckType != 0 })
	if got := h.srv.GetInteraction(ic.ID).AckType; got != discordtest.CallbackDeferredMessage {
		t.Fatalf("allowed command answered with callback type %d", got)
	}
	thread := h.threadOf(h.srv.GetInteraction(ic.ID).Original)
	h.waitResults(thread, 1)
	return thread
}

func TestAccessWorkspaces(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) {
		otherGuild, _ := s.srv.AddGuild("Elsewhere", 0)
		s.engine.Access = core.Access{Workspaces: []string{otherGuild}}
	})
	srv := h.srv
	refusedCommand(t, h, srv.Alice, srv.Channel, noServer)
	img := srv.Upload("in.png", "image/png", testPNG(2))
	refusedMessage(t, h, srv.Mention(srv.Bob, srv.Channel, "a fox", img), noServer)
	// A DM belongs to no server.
	refusedMessage(t, h, srv.DM(srv.Alice, "a fox", img), noDMServer)
	costNothing(t, h)
}

func TestAccessChannels(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) {
		_, otherChannel := s.srv.AddGuild("Elsewhere", 0)
		s.engine.Access = core.Access{Channels: []string{otherChannel}}
	})
	srv := h.srv
	refusedCommand(t, h, srv.Alice, srv.Channel, noChannel)
	img := srv.Upload("in.png", "image/png", testPNG(2))
	refusedMessage(t, h, srv.Mention(srv.Bob, srv.Channel, "a fox", img), noChannel)
	costNothing(t, h)
}

func TestAccessChannelsCountThreadsAsTheirParent(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.engine.Access = core.Access{Channels: []string{s.srv.Channel}} })
	srv := h.srv
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	r := h.waitResults(thread, 1)[0]

	// In the session thread: a button, a reply, and /imagine itself.
	press := srv.Click(t, srv.Alice, r, button(t, r, "regenerate"))
	h.waitResults(thread, 2)
	if got := srv.GetInteraction(press.ID).AckType; got != discordtest.CallbackDeferredUpdate {
		t.Errorf("button in the thread answered with type %d", got)
	}
	srv.Say(srv.Alice, thread, "make it blue")
	h.waitResults(thread, 3)
	here := srv.Command(t, srv.Alice, thread, "imagine", discordtest.Option{Name: "prompt", Value: "a cat"})
	h.waitResults(thread, 4)
	if got := srv.GetInteraction(here.ID).AckType; got != discordtest.CallbackDeferredMessage {
		t.Errorf("/imagine in the thread answered with type %d", got)
	}
	sess, err := h.engine.Session(context.Background(), discord.Platform, thread)
	if err != nil || sess.Channel != srv.Channel {
		t.Errorf("session %+v (%v), want it in %s", sess, err, srv.Channel)
	}
}

func TestAccessUsers(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.engine.Access = core.Access{Users: []string{s.srv.Alice.ID}} })
	srv := h.srv
	refusedCommand(t, h, srv.Bob, srv.Channel, noUser)
	img := srv.Upload("in.png", "image/png", testPNG(2))
	m := srv.Mention(srv.Bob, srv.Channel, "a fox", img)
	refusedMessage(t, h, m, noUser)
	refusedMessage(t, h, srv.DM(srv.Bob, "a fox", img), noUser)
	// Told once: a second refused mention in the channel gets no second
	// note, so Easel cannot be made to flood it.
	again := srv.Mention(srv.Bob, srv.Channel, "a fox, again", img)
	costNothing(t, h)

	thread := allowedCommand(t, h, srv.Alice, srv.Channel)
	notes := 0
	for _, r := range srv.Messages(srv.Channel) {
		if r.Author.ID == srv.Bot.ID && !r.Ephemeral() && strings.HasPrefix(r.Content, "🔒 ") {
			notes++
			if r.Reference == again.ID {
				t.Error("the second refused mention got a note too")
			}
		}
	}
	if notes != 1 {
		t.Errorf("%d notes in the channel, want 1", notes)
	}

	// Bob's reply in Alice's session thread is refused too, unread.
	h.waitIdle(thread)
	refusedMessage(t, h, srv.Post(discordtest.Draft{From: srv.Bob, Channel: thread, Content: "make it blue",
		Attachments: []discordtest.Attachment{img}}), noUser)
	if calls := srv.Calls(cdnRoute); len(calls) != 0 {
		t.Errorf("%d downloads of refused attachments", len(calls))
	}
	if n := h.gen.Calls.Load(); n != 1 {
		t.Errorf("%d provider calls, want only Alice's", n)
	}
}

func TestAccessRoles(t *testing.T) {
	t.Parallel()
	h := start(t, withAccess(core.Access{Roles: []string{roleID}}))
	srv := h.srv
	member := srv.Alice
	member.Roles = []string{otherRoleID, roleID}
	outsider := srv.Bob
	outsider.Roles = []string{otherRoleID}

	refusedCommand(t, h, outsider, srv.Channel, noRole)
	img := srv.Upload("in.png", "image/png", testPNG(2))
	refusedMessage(t, h, srv.DM(member, "a fox", img), noDMRoles)
	costNothing(t, h)

	ic := srv.Command(t, member, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	r := h.waitResults(thread, 1)[0]

	// The image's own author, without the role now, may not press its buttons.
	lost := srv.Alice
	lost.Roles = nil
	press := srv.Click(t, lost, r, button(t, r, "variations"))
	srv.Wait(t, "the press's response", func() bool { return srv.GetInteraction(press.ID).AckType != 0 })
	refusedInteraction(t, h, srv.GetInteraction(press.ID), noRole)
	if n := h.gen.Calls.Load(); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
	// With the role, the press works.
	srv.Click(t, member, r, button(t, r, "regenerate"))
	h.waitResults(thread, 2)
}

func TestAccessDMsOff(t *testing.T) {
	t.Parallel()
	h := start(t, withAccess(core.Access{DisableDMs: true}))
	srv := h.srv
	img := srv.Upload("in.png", "image/png", testPNG(2))
	refusedMessage(t, h, srv.DM(srv.Alice, "a fox", img), noDMs)
	refusedMessage(t, h, srv.DM(srv.Bob, "new", img), noDMs)
	costNothing(t, h)
	// Channels still work.
	allowedCommand(t, h, srv.Alice, srv.Channel)
}

func TestAccessAdminsPass(t *testing.T) {
	t.Parallel()
	const adminRole = "777000000000000001"
	h := start(t, func(s *setup) {
		otherGuild, otherChannel := s.srv.AddGuild("Elsewhere", 0)
		s.cfg.AdminRoles = []string{adminRole}
		s.engine.Access = core.Access{Workspaces: []string{otherGuild}, Channels: []string{otherChannel},
			Users: []string{"1"}, Roles: []string{roleID}, DisableDMs: true}
		s.engine.Admins = []string{s.srv.Bob.ID}
	})
	srv := h.srv

	// Discord's Administrator permission, an admin role, engine.admins.
	owner := srv.AddUser("owner")
	owner.Admin = true
	allowedCommand(t, h, owner, srv.Channel)
	mod := srv.AddUser("mod")
	mod.Roles = []string{adminRole}
	allowedCommand(t, h, mod, srv.Channel)
	allowedCommand(t, h, srv.Bob, srv.Channel)
	dm := srv.DM(srv.Bob, "a fox in a DM")
	h.waitResults(dm.ChannelID, 1)
	if n := h.gen.Calls.Load(); n != 4 {
		t.Errorf("%d provider calls, want 4", n)
	}
}
