package discord_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/core"
)

func TestMentionStartsAThreadAndRepliesRefine(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	m := srv.Mention(srv.Alice, srv.Channel, "a red fox")
	thread := h.threadOf(m.ID)
	if thread != m.ID {
		t.Errorf("thread %s, want it started on the message %s", thread, m.ID)
	}
	v1 := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)
	srv.Wait(t, "✅ on the mention", func() bool {
		got, _ := srv.GetMessage(m.ID)
		return slices.Equal(got.Reactions, []string{"✅"})
	})
	if req := h.gen.Requests()[0]; req.Prompt != "a red fox" || req.Kind != core.KindGenerate {
		t.Errorf("request = %s %q, want the prompt without the mention", req.Kind, req.Prompt)
	}

	reply := srv.Say(srv.Alice, thread, "make it blue")
	h.waitResults(thread, 2)
	req := h.gen.Requests()[1]
	if req.Kind != core.KindRefine || req.Prompt != "make it blue" || req.Base == nil || !bytes.Equal(req.Base.Data, v1.Attachments[0].Data) {
		t.Errorf("refine request = %s %q, want a refinement of the posted v1", req.Kind, req.Prompt)
	}
	srv.Wait(t, "✅ on the reply", func() bool {
		got, _ := srv.GetMessage(reply.ID)
		return slices.Equal(got.Reactions, []string{"✅"})
	})
}

func TestReplyToAnOlderResultBranches(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a castle").ID)
	v1 := h.waitResults(thread, 1)[0]
	srv.Say(srv.Alice, thread, "add a moat")
	h.waitResults(thread, 2)

	srv.Reply(srv.Bob, thread, v1.ID, "make it snowy")
	h.waitResults(thread, 3)
	req := h.gen.Requests()[2]
	if req.Kind != core.KindBranch || req.Parent != 1 || !bytes.Equal(req.Base.Data, v1.Attachments[0].Data) {
		t.Errorf("request = %s of v%d, want a branch from v1", req.Kind, req.Parent)
	}
	if len(req.History) != 1 || req.History[0] != "a castle" {
		t.Errorf("history = %q, want v1's lineage only", req.History)
	}

	// Without the replied-to message in the dispatch, Easel fetches it.
	srv.Post(discordtest.Draft{From: srv.Alice, Channel: thread, Content: "make it sunny", ReplyTo: v1.ID, Unresolved: true})
	h.waitResults(thread, 4)
	if req := h.gen.Requests()[3]; req.Kind != core.KindBranch || req.Parent != 1 {
		t.Errorf("request = %s of v%d, want another branch from v1", req.Kind, req.Parent)
	}
	if len(srv.Calls("GET /channels/{channel_id}/messages/{message_id}")) == 0 {
		t.Error("the replied-to message was not fetched")
	}
}

func TestButtons(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a sailboat").ID)
	v1 := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)

	press := func(m discordtest.Message, action string, results int) {
		t.Helper()
		ic := srv.Click(t, srv.Alice, m, button(t, m, action))
		srv.Wait(t, action+" to be acknowledged", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
		if got := srv.GetInteraction(ic.ID); got.AckType != discordtest.CallbackDeferredUpdate || got.AckLatency() > discordtest.InteractionDeadline {
			t.Errorf("%s acknowledged with type %d after %s", action, got.AckType, got.AckLatency())
		}
		if results > 0 {
			h.waitResults(thread, results)
		}
		h.waitIdle(thread)
	}
	press(v1, "regenerate", 2)
	press(v1, "variations", 3) // two variations, as one grid
	press(v1, "high_quality", 4)
	var kinds []core.TurnKind
	for _, r := range h.gen.Requests() {
		kinds = append(kinds, r.Kind)
	}
	want := []core.TurnKind{core.KindGenerate, core.KindRegenerate, core.KindVariations, core.KindHighQuality}
	if !slices.Equal(kinds, want) {
		t.Errorf("requests = %v, want %v", kinds, want)
	}
	if reqs := h.gen.Requests(); reqs[2].N != 2 || reqs[3].Flags.Quality != "high" {
		t.Errorf("variations n=%d, high quality %q", reqs[2].N, reqs[3].Flags.Quality)
	}

	hq := h.results(thread)[3]
	press(hq, "undo", 0)
	srv.Wait(t, "the undo reply", func() bool {
		return slices.ContainsFunc(h.replies(thread), func(s string) bool { return strings.Contains(s, "back to v1") })
	})
	if n := h.gen.Calls.Load(); n != 4 {
		t.Errorf("undo called the provider: %d calls", n)
	}
}

func TestButtonsOfSomeoneElse(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.cfg.AdminRoles = []string{"role-mods"} })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a bonsai").ID)
	v1 := h.waitResults(thread, 1)[0]
	h.waitIdle(thread)

	ic := srv.Click(t, srv.Bob, v1, button(t, v1, "regenerate"))
	srv.Wait(t, "an ephemeral note", func() bool { return len(srv.GetInteraction(ic.ID).Followups) == 1 })
	got := srv.GetInteraction(ic.ID)
	note, _ := srv.GetMessage(got.Followups[0])
	if got.AckType != discordtest.CallbackDeferredUpdate || !note.Ephemeral() || !strings.Contains(note.Content, "only alice") {
		t.Errorf("ack %d, note %+v: want an ephemeral refusal", got.AckType, note)
	}
	if r, _ := srv.GetMessage(v1.ID); r.Deleted {
		t.Error("the refusal deleted the result")
	}
	if n := h.gen.Calls.Load(); n != 1 {
		t.Errorf("%d provider calls, want no job for someone else's button", n)
	}

	admin := srv.AddUser("root")
	admin.Admin = true
	srv.Click(t, admin, v1, button(t, v1, "regenerate"))
	h.waitResults(thread, 2)
	mod := srv.AddUser("mod")
	mod.Roles = []string{"role-mods"}
	srv.Click(t, mod, v1, button(t, v1, "variations"))
	h.waitResults(thread, 3) // two variations, as one grid
}

func TestReplayedDispatchesStartOneJob(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	m := srv.Mention(srv.Alice, srv.Channel, "a lantern")
	srv.Redeliver(m)
	ic := srv.Command(t, srv.Bob, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a kite"})
	srv.Wait(t, "the first response", func() bool { return srv.GetInteraction(ic.ID).Original != "" })
	srv.RedeliverInteraction(ic)

	thread := h.threadOf(m.ID)
	h.waitResults(thread, 1)
	h.waitResults(h.threadOf(srv.GetInteraction(ic.ID).Original), 1)
	h.waitIdle(thread)
	settle(t, h, 2)
	if n := len(srv.Calls("POST /channels/{channel_id}/messages/{message_id}/threads")); n != 2 {
		t.Errorf("%d threads started, want 2", n)
	}
}

// settle checks that the provider saw exactly want calls, now and a while
// later, when a duplicate would have been queued and run.
func settle(t *testing.T, h *harness, want int64) {
	t.Helper()
	for range 2 {
		if n := h.gen.Calls.Load(); n != want {
			t.Fatalf("%d provider calls, want %d", n, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestAttachmentsAreInputs(t *testing.T) {
	t.Parallel()
	h := start(t)
	srv := h.srv
	logo := testPNG(99)
	m := srv.Mention(srv.Alice, srv.Channel, "put this logo on a mug", srv.Upload("logo.png", "image/png", logo))
	h.waitResults(h.threadOf(m.ID), 1)
	if in := h.gen.Requests()[0].Inputs; len(in) != 1 || !bytes.Equal(in[0].Data, logo) {
		t.Fatalf("inputs = %d images, want the attachment", len(in))
	}
	for _, c := range srv.Calls("GET /attachments/{channel_id}/{attachment_id}/{filename}") {
		if c.Auth != "" {
			t.Errorf("the CDN was sent an Authorization header: %q", c.Auth)
		}
	}
}

func TestBadAttachmentsAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.cfg.Attachments.MaxBytes = 1 << 20 })
	srv := h.srv
	declared := srv.Upload("huge.png", "image/png", testPNG(1))
	declared.Size = 25 << 20
	understated := srv.Upload("big.png", "image/png", append(testPNG(3), make([]byte, 2<<20)...))
	understated.Size = 1000
	offCDN := srv.Upload("elsewhere.png", "image/png", testPNG(2))
	offCDN.URL = "https://example.com/elsewhere.png"
	cases := []struct {
		file discordtest.Attachment
		want string
	}{
		{srv.Upload("notes.txt", "text/plain", []byte("just some notes")), "notes.txt is not an image"},
		{declared, "huge.png is 25.0 MB"},
		{understated, "big.png is larger than 1.0 MB"},
		{srv.Upload("broken.png", "image/png", testPNG(4)[:20]), "broken.png could not be read"},
		{offCDN, "is not stored on Discord"},
	}
	for i, c := range cases {
		// One person each: a person's further problems within a minute
		// get no reply (TestProblemRepliesAreThrottled).
		m := srv.Mention(srv.AddUser(fmt.Sprintf("user%d", i)), srv.Channel, "use this", c.file)
		srv.Wait(t, "a reply about "+c.file.Filename, func() bool {
			return slices.ContainsFunc(srv.Messages(srv.Channel), func(r discordtest.Message) bool {
				return r.Reference == m.ID && strings.Contains(r.Content, c.want)
			})
		})
	}
	if n, th := h.gen.Calls.Load(), srv.Threads(srv.Channel); n != 0 || len(th) != 0 {
		t.Errorf("%d jobs and %d threads for refused attachments", n, len(th))
	}
	for _, c := range srv.Calls("GET /attachments/{channel_id}/{attachment_id}/{filename}") {
		if strings.Contains(c.Path, "huge.png") {
			t.Error("downloaded an attachment declared too large")
		}
	}
}

func TestOversizedResultIsExplained(t *testing.T) {
	t.Parallel()
	big := noisePNG(1800, 1600) // about 11 MB: over a bot's 10 MB upload limit
	h := start(t, func(s *setup) { s.gen.SetOutput(func(int) []byte { return big }) })
	srv := h.srv
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a detailed map").ID)
	r := h.waitResults(thread, 1)[0]
	if len(r.Attachments) != 0 || !strings.Contains(r.Content, "over the 10.0 MB this channel accepts") || len(r.Buttons()) != 6 { // 4 buttons, Delete and the Edit region menu
		t.Errorf("result = %q with %d files and %d buttons", r.Content, len(r.Attachments), len(r.Buttons()))
	}
	for _, c := range srv.Calls("POST /channels/{channel_id}/messages") {
		if c.Status == 413 {
			t.Error("the image was sent anyway and refused by Discord")
		}
	}
}

func TestRepliesNeedAMentionWithoutMessageContent(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) {
		s.cfg.MessageContent = false
		s.srv.MessageContentAllowed = false
	})
	srv := h.srv
	if ids := srv.Identifies(); ids[0].Intents&(1<<15) != 0 {
		t.Errorf("asked for the Message Content intent: %b", ids[0].Intents)
	}
	thread := h.threadOf(srv.Mention(srv.Alice, srv.Channel, "a meadow").ID)
	h.waitResults(thread, 1)
	h.waitIdle(thread)

	first := srv.Say(srv.Alice, thread, "add cows") // Discord blanks it
	srv.Wait(t, "the hint", func() bool { return len(h.replies(thread)) == 1 })
	srv.Say(srv.Bob, thread, "add sheep")
	srv.Mention(srv.Alice, thread, "add cows")
	h.waitResults(thread, 2)
	h.waitIdle(thread)
	hints := h.replies(thread)
	if len(hints) != 1 || !strings.Contains(hints[0], "<@"+srv.Bot.ID+">") {
		t.Errorf("replies = %q, want one hint to mention Easel", hints)
	}
	if msgs := srv.Messages(thread); !slices.ContainsFunc(msgs, func(m discordtest.Message) bool { return m.Reference == first.ID }) {
		t.Error("the hint does not answer the unreadable reply")
	}
	if req := h.gen.Requests()[1]; req.Prompt != "add cows" || req.Kind != core.KindRefine {
		t.Errorf("request = %s %q", req.Kind, req.Prompt)
	}
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	h := start(t, func(s *setup) { s.cfg.Guilds = nil }) // global /imagine, which DMs offer
	srv := h.srv
	dm := srv.DMChannel(srv.Alice)
	boat := srv.DM(srv.Alice, "a paper boat")
	v1 := h.waitResults(dm, 1)[0]
	srv.DM(srv.Alice, "make it red")
	h.waitResults(dm, 2)
	srv.DM(srv.Alice, "new")
	srv.Wait(t, "the new-session reply", func() bool {
		return slices.ContainsFunc(h.replies(dm), func(s string) bool { return strings.Contains(s, "next message starts a new") })
	})
	srv.DM(srv.Alice, "a kite")
	kite := h.waitResults(dm, 3)[2]
	srv.DM(srv.Alice, "new a balloon")
	balloon := h.waitResults(dm, 4)[3]
	ic := srv.Command(t, srv.Alice, dm, "imagine", discordtest.Option{Name: "prompt", Value: "a tree"})
	tree := h.waitResults(dm, 5)[4]
	h.waitIdle(dm)

	reqs := h.gen.Requests()
	kinds := []core.TurnKind{reqs[0].Kind, reqs[1].Kind, reqs[2].Kind, reqs[3].Kind, reqs[4].Kind}
	if !slices.Equal(kinds, []core.TurnKind{core.KindGenerate, core.KindRefine, core.KindGenerate, core.KindGenerate, core.KindGenerate}) {
		t.Errorf("requests = %v", kinds)
	}
	if reqs[3].Prompt != "a balloon" {
		t.Errorf("prompt = %q, want the text after new", reqs[3].Prompt)
	}
	sessions := map[string]bool{}
	for _, r := range []discordtest.Message{v1, kite, balloon, tree} {
		sessions[strings.Split(button(t, r, "undo"), ":")[2]] = true
	}
	if len(sessions) != 4 {
		t.Errorf("%d sessions, want 4 (boat, kite, balloon, tree)", len(sessions))
	}
	if got, _ := srv.GetMessage(boat.ID); !slices.Equal(got.Reactions, []string{"✅"}) {
		t.Errorf("reactions on the DM = %v", got.Reactions)
	}
	if got := srv.GetInteraction(ic.ID); got.AckType != discordtest.CallbackDeferredMessage {
		t.Errorf("DM command acknowledged with %d", got.AckType)
	}

	// Replying to the first session's result branches from it, even after "new".
	srv.Reply(srv.Alice, dm, v1.ID, "make it green")
	h.waitResults(dm, 6)
	if req := h.gen.Requests()[5]; req.Kind != core.KindBranch || !bytes.Equal(req.Base.Data, v1.Attachments[0].Data) {
		t.Errorf("reply to an old result = %s, want a branch from the boat's v1", req.Kind)
	}
}
