package discord_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

func TestImagineInAChannel(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.gen.SetPartials(1) })
	srv := h.srv

	if ids := srv.Identifies(); len(ids) != 1 || ids[0].Intents != 1|1<<9|1<<12|1<<15 {
		t.Errorf("IDENTIFY intents = %+v, want guilds, guild messages, DMs and message content", ids)
	}
	cmd := srv.Commands(srv.Guild)[0]
	var names []string
	for _, o := range cmd.Options {
		names = append(names, o.Name)
	}
	if cmd.Name != "imagine" || !slices.Equal(names, []string{"prompt", "aspect", "quality", "n", "model", "image", "style"}) || !cmd.Options[0].Required {
		t.Errorf("registered %s with options %v", cmd.Name, names)
	}

	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine",
		discordtest.Option{Name: "prompt", Value: "a lighthouse at dusk"},
		discordtest.Option{Name: "aspect", Value: "16:9"},
		discordtest.Option{Name: "quality", Value: "high"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	got := srv.GetInteraction(ic.ID)
	if got.AckType != discordtest.CallbackDeferredMessage || got.AckLatency() > discordtest.InteractionDeadline {
		t.Errorf("acknowledged with type %d after %s, want a deferred message within 3s", got.AckType, got.AckLatency())
	}

	thread := h.threadOf(got.Original)
	if ch, _ := srv.GetChannel(thread); ch.ParentID != srv.Channel || ch.Type != discordtest.ChannelPublicThread {
		t.Errorf("session thread = %+v, want a public thread of #general", ch)
	}
	r := h.waitResults(thread, 1)[0]
	if len(r.Attachments) != 1 || r.Attachments[0].Filename != "easel-v1.png" || r.Attachments[0].ContentType != "image/png" {
		t.Fatalf("result attachments = %+v", r.Attachments)
	}
	if !strings.HasPrefix(r.Content, "v1 · “a lighthouse at dusk”") {
		t.Errorf("caption = %q", r.Content)
	}
	sess, err := h.engine.Session(context.Background(), discord.Platform, thread)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range r.Buttons() {
		ids = append(ids, b.Label+"="+b.CustomID)
	}
	want := []string{"Regenerate=easel:regenerate:" + sess.ID + ":1", "Variations=easel:variations:" + sess.ID + ":1",
		"Undo=easel:undo:" + sess.ID + ":1", "High quality=easel:high_quality:" + sess.ID + ":1",
		"Delete=easel:delete:" + sess.ID + ":1",
		"=easel:region:" + sess.ID + ":1"} // the Edit region menu, which has no label
	if !slices.Equal(ids, want) {
		t.Errorf("buttons = %v, want %v", ids, want)
	}
	if sess.Channel != srv.Channel || sess.Workspace != srv.Guild || sess.CreatedBy.ID != srv.Alice.ID {
		t.Errorf("session = channel %s workspace %s by %+v", sess.Channel, sess.Workspace, sess.CreatedBy)
	}
	if req := h.gen.Requests()[0]; req.Flags.Aspect != "16:9" || req.Flags.Quality != "high" || req.Prompt != "a lighthouse at dusk" {
		t.Errorf("request = %q %+v", req.Prompt, req.Flags)
	}

	// Results travel with the bot token as channel messages, not webhooks.
	posts := srv.Calls("POST /channels/{channel_id}/messages")
	if i := slices.IndexFunc(posts, func(c discordtest.Call) bool { return len(c.Files) == 1 && c.Files[0].Name == "easel-v1.png" }); i < 0 || posts[i].Auth != "Bot "+srv.Token {
		t.Errorf("result not posted as a channel message with the bot token")
	}
	srv.Wait(t, "the response to link the thread", func() bool {
		m, _ := srv.GetMessage(got.Original)
		return strings.Contains(m.Content, "<#"+thread+">") && strings.Contains(m.Content, "<@"+srv.Alice.ID+">: a lighthouse at dusk")
	})

	// Progress: typing, a status message showing the partial preview, deleted at the end.
	h.waitIdle(thread)
	if len(srv.Calls("POST /channels/{channel_id}/typing")) == 0 {
		t.Error("no typing indicator")
	}
	var preview bool
	for _, c := range srv.Calls("PATCH /channels/{channel_id}/messages/{message_id}") {
		preview = preview || len(c.Files) == 1 && c.Files[0].Name == "preview.png"
	}
	if !preview {
		t.Error("the partial image did not replace the status message's attachment")
	}
	if len(srv.Calls("DELETE /channels/{channel_id}/messages/{message_id}")) == 0 {
		t.Error("the status message was not deleted")
	}
}

func TestImagineOutlivesTheInteractionToken(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := start(t, func(s *setup) { s.gen.SetGate(gate) })
	srv := h.srv
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a slow painting"})
	srv.Wait(t, "the job to start", func() bool { return h.gen.Calls.Load() == 1 })
	thread := h.threadOf(srv.GetInteraction(ic.ID).Original)
	srv.Wait(t, "the response to link the thread", func() bool {
		m, _ := srv.GetMessage(srv.GetInteraction(ic.ID).Original)
		return strings.Contains(m.Content, "<#"+thread+">")
	})

	srv.ExpireTokens() // 15 minutes pass
	close(gate)
	h.waitResults(thread, 1)
	h.waitIdle(thread)
}

func TestImagineRefusesBadFlags(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a banner --ar 9:1"})
	srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	got := srv.GetInteraction(ic.ID)
	note, _ := srv.GetMessage(got.Followups[0])
	if !note.Ephemeral() || !strings.Contains(note.Content, "--ar 9:1") {
		t.Errorf("note = %+v, want an ephemeral message naming the flag", note)
	}
	if orig, _ := srv.GetMessage(got.Original); !orig.Deleted {
		t.Error("the deferred response was left behind")
	}
	if th := srv.Threads(srv.Channel); len(th) != 0 || h.gen.Calls.Load() != 0 {
		t.Errorf("threads %v and %d jobs for a refused command", th, h.gen.Calls.Load())
	}
}

func TestImagineWithAnImage(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	logo := testPNG(7)
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine",
		discordtest.Option{Name: "prompt", Value: "this logo on a mug"},
		discordtest.Option{Name: "image", Value: srv.Upload("logo.png", "image/png", logo)})
	srv.Wait(t, "the response", func() bool { return srv.GetInteraction(ic.ID).Original != "" })
	h.waitResults(h.threadOf(srv.GetInteraction(ic.ID).Original), 1)
	if in := h.gen.Requests()[0].Inputs; len(in) != 1 || !bytes.Equal(in[0].Data, logo) || in[0].Name != "logo.png" {
		t.Errorf("inputs = %d images, want the attached logo", len(in))
	}
}

func TestImagineInAThreadStartsANewSession(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	m := srv.Mention(srv.Alice, srv.Channel, "a red fox")
	thread := h.threadOf(m.ID)
	first := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)

	ic := srv.Command(t, srv.Bob, thread, "imagine", discordtest.Option{Name: "prompt", Value: "a blue whale"})
	second := h.waitResults(thread, 2)[1]
	if reqs := h.gen.Requests(); reqs[1].Kind != core.KindGenerate || reqs[1].Base != nil {
		t.Errorf("second request = %s with base %v, want a fresh generation", reqs[1].Kind, reqs[1].Base != nil)
	}
	if button(t, first, "undo")[len("easel:undo:"):] == button(t, second, "undo")[len("easel:undo:"):] {
		t.Error("/imagine in a session thread continued the old session")
	}
	if len(srv.Threads(thread)) != 0 || srv.GetInteraction(ic.ID).AckType != discordtest.CallbackDeferredMessage {
		t.Error("expected the command to be answered in the thread itself")
	}
}

func TestDeletedStatusMessageIsReplaced(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	h := start(t, func(s *setup) { s.gen.SetGate(gate); s.gen.SetPartials(1) })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a comet").ID)
	var status discordtest.Message
	srv.Wait(t, "a status message", func() bool {
		i := slices.IndexFunc(srv.Messages(thread), h.isStatus)
		if i >= 0 {
			status = srv.Messages(thread)[i]
		}
		return i >= 0
	})
	srv.Delete(status.ID) // a moderator tidies up
	close(gate)           // the preview edit finds the message gone
	h.waitResults(thread, 1)
	h.waitIdle(thread)
	posts := srv.Calls("POST /channels/{channel_id}/messages")
	if !slices.ContainsFunc(posts, func(c discordtest.Call) bool { return len(c.Files) == 1 && c.Files[0].Name == "preview.png" }) {
		t.Error("the preview was not posted as a new status message")
	}
}
