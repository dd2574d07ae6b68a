package slack

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
)

func TestSlashCommandPostsRootAndImageWithButtons(t *testing.T) {
	h := newHarness(t, options{})
	env := h.fake.SlashCommand(ana, "C1", "a red fox & a <hen> --ar 16:9")
	ack := h.fake.WaitAck(t, h.fake.Send(t, env))
	if ack.Latency > time.Second {
		t.Errorf("ack took %s", ack.Latency)
	}
	root := h.root(ana, "C1", "a red fox & a <hen> --ar 16:9")

	up := h.images(1)[0]
	if up.Channel != "C1" || up.ThreadTS != root {
		t.Errorf("image shared in %s/%s, want the thread C1/%s", up.Channel, up.ThreadTS, root)
	}
	if !strings.HasPrefix(up.InitialComment, "v1 · “a red fox &amp; a &lt;hen&gt;”") {
		t.Errorf("caption %q", up.InitialComment)
	}
	req := h.gen.Requests()[0]
	if req.Kind != core.KindGenerate || req.Prompt != "a red fox & a <hen>" || req.Flags.Aspect != "16:9" {
		t.Errorf("provider got %s %q %+v", req.Kind, req.Prompt, req.Flags)
	}
	ts, session := h.buttons("C1", root, 1)
	m, _ := h.fake.Message("C1", ts)
	got := buttonsOf(m.Blocks)
	for _, action := range []string{"regenerate", "variations", "undo", "high_quality"} {
		if got[action] != session+":1" {
			t.Errorf("button %s has value %q, want %s:1", action, got[action], session)
		}
	}
	h.reacted("C1", root, reactDone)
	h.settle()
	for _, r := range h.fake.Replies("C1", root) {
		if strings.Contains(r.Text, "rendering") && !r.Deleted {
			t.Errorf("status message %q left in the thread", r.Text)
		}
	}
}

func TestReplyInSessionThreadRefines(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a lighthouse")
	first := h.images(1)[0]

	ts, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it night", ThreadTS: root})
	h.deliver(envs...)
	h.images(2)
	req := h.gen.Requests()[1]
	if req.Kind != core.KindRefine || req.Prompt != "make it night" {
		t.Fatalf("provider got %s %q", req.Kind, req.Prompt)
	}
	if req.Base == nil || !bytes.Equal(req.Base.Data, first.Data) {
		t.Error("the refinement did not get the previous image as its base")
	}
	h.reacted("C1", ts, reactDone)
}

func TestMentionStartsSessionInItsThread(t *testing.T) {
	h := newHarness(t, options{})
	text := "<@" + h.fake.BotUserID + "> a castle on a hill"
	ts, envs := h.fake.Post(slacktest.Post{Channel: "C2", User: ana, Text: text})
	if len(envs) != 2 {
		t.Fatalf("fake sent %d events for a mention, want message + app_mention", len(envs))
	}
	h.deliver(envs...)
	up := h.images(1)[0]
	if up.ThreadTS != ts {
		t.Errorf("image in thread %s, want under the mention %s", up.ThreadTS, ts)
	}
	if got := h.gen.Requests()[0].Prompt; got != "a castle on a hill" {
		t.Errorf("prompt %q", got)
	}

	// A reply that mentions Easel in the session thread refines, once.
	reply, envs := h.fake.Post(slacktest.Post{Channel: "C2", User: ana, Text: text + ", at dawn", ThreadTS: ts})
	h.deliver(envs...)
	h.images(2)
	h.reacted("C2", reply, reactDone)
	h.settle()
	if n := len(h.gen.Requests()); n != 2 {
		t.Errorf("%d provider calls, want 2 (message and app_mention are one request)", n)
	}
}

func TestMessagesEaselIgnores(t *testing.T) {
	h := newHarness(t, options{})
	top, envs := h.fake.Post(slacktest.Post{Channel: "C3", User: ana, Text: "lunch anyone?"})
	h.deliver(envs...)
	h.deliver(
		h.fake.Event(map[string]any{"type": "message", "subtype": "bot_message", "bot_id": "B9", "text": "beep",
			"channel": "C3", "ts": "1.1", "thread_ts": top, "channel_type": "channel", "event_ts": "1.1"}),
		h.fake.Event(map[string]any{"type": "message", "user": h.fake.BotUserID, "text": "mine",
			"channel": "C3", "ts": "1.2", "thread_ts": top, "channel_type": "channel", "event_ts": "1.2"}),
		h.fake.Event(map[string]any{"type": "message", "subtype": "message_changed", "channel": "C3", "ts": "1.3",
			"channel_type": "channel", "event_ts": "1.3", "message": map[string]any{"type": "message", "user": ana,
				"text": "edited", "ts": "1.0", "thread_ts": top}}),
		h.fake.Event(map[string]any{"type": "message", "subtype": "message_deleted", "channel": "C3", "ts": "1.4",
			"channel_type": "channel", "event_ts": "1.4", "deleted_ts": "1.0"}),
	)
	_, envs = h.fake.Post(slacktest.Post{Channel: "C3", User: bob, Text: "me!", ThreadTS: top})
	h.deliver(envs...)
	h.fake.WaitFor(t, "the reply's session lookup", func() bool { return h.engine.sessions.Load() >= 1 })
	if n := h.engine.handles.Load(); n != 0 {
		t.Errorf("%d messages reached the engine, want none", n)
	}
	for _, c := range h.fake.Calls("") {
		if c.Method != "auth.test" && c.Method != "apps.connections.open" {
			t.Errorf("Web API call %s after ignored messages", c.Method)
		}
	}
}

func TestDirectMessages(t *testing.T) {
	h := newHarness(t, options{})
	ts, envs := h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: ana, Text: "a paper boat"})
	h.deliver(envs...)
	if up := h.images(1)[0]; up.Channel != "D1" || up.ThreadTS != ts {
		t.Errorf("DM image in %s/%s, want D1/%s", up.Channel, up.ThreadTS, ts)
	}
	_, envs = h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: ana, Text: "make it red", ThreadTS: ts})
	h.deliver(envs...)
	h.images(2)
	if req := h.gen.Requests()[1]; req.Kind != core.KindRefine {
		t.Errorf("DM thread reply was a %s, want a refinement", req.Kind)
	}
	// A new top-level DM starts a new session.
	_, envs = h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: ana, Text: "a kite"})
	h.deliver(envs...)
	h.images(3)
	if req := h.gen.Requests()[2]; req.Kind != core.KindGenerate {
		t.Errorf("new DM was a %s, want a generation", req.Kind)
	}
}

func TestButtons(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	v1 := h.images(1)[0]
	b1, _ := h.buttons("C1", root, 1)

	h.deliver(h.fake.Click(t, ana, "C1", b1, "regenerate"))
	h.images(2)
	if req := h.gen.Requests()[1]; req.Kind != core.KindRegenerate || req.Prompt != "a teapot" {
		t.Errorf("regenerate sent %s %q", req.Kind, req.Prompt)
	}
	b2, _ := h.buttons("C1", root, 2)

	h.deliver(h.fake.Click(t, ana, "C1", b2, "variations"))
	h.images(3) // two variations, v3 and v4, as one grid
	if req := h.gen.Requests()[2]; req.Kind != core.KindVariations || req.N != 2 {
		t.Errorf("variations sent %s n=%d", req.Kind, req.N)
	}

	// High quality on v1's buttons, now an older version, branches from v1.
	h.deliver(h.fake.Click(t, ana, "C1", b1, "high_quality"))
	h.images(4)
	req := h.gen.Requests()[3]
	if req.Kind != core.KindHighQuality || req.Parent != 1 || req.Base == nil || !bytes.Equal(req.Base.Data, v1.Data) {
		t.Errorf("high quality on v1 sent %s parent %d", req.Kind, req.Parent)
	}
	b5, _ := h.buttons("C1", root, 5)

	h.deliver(h.fake.Click(t, ana, "C1", b5, "undo"))
	h.fake.WaitFor(t, "the undo reply", func() bool {
		for _, r := range h.fake.Replies("C1", root) {
			if strings.HasPrefix(r.Text, "↩️ back to v1") {
				return true
			}
		}
		return false
	})
	h.settle()
	if n := len(h.gen.Requests()); n != 4 {
		t.Errorf("%d provider calls, want 4 (undo calls none)", n)
	}
}

func TestButtonPressedBySomeoneElse(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	b1, _ := h.buttons("C1", root, 1)
	h.settle()

	h.deliver(h.fake.Click(t, bob, "C1", b1, "regenerate"))
	e := h.ephemeral(bob, "only ana")
	if e.Channel != "C1" || e.ThreadTS != root {
		t.Errorf("ephemeral in %s/%s, want the thread", e.Channel, e.ThreadTS)
	}
	h.settle()
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("%d provider calls, want 1", n)
	}
}

func TestButtonsWorkAfterRestart(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a teapot")
	b1, _ := h.buttons("C1", root, 1)
	h.settle()
	// A new bot value knows nothing of the thread; the button's value and the
	// stored session are enough.
	h.bot.threads = newThreadCache()
	h.deliver(h.fake.Click(t, ana, "C1", b1, "regenerate"))
	if up := h.images(2)[1]; up.ThreadTS != root {
		t.Errorf("regenerated image in thread %s, want %s", up.ThreadTS, root)
	}
}

func TestFlagErrorsAreEphemeral(t *testing.T) {
	h := newHarness(t, options{})
	h.deliver(h.fake.SlashCommand(ana, "C1", "a fox --ar banana"))
	if e := h.ephemeral(ana, "--ar banana"); !e.ResponseURL {
		t.Error("a command's error did not go through its response URL")
	}
	h.deliver(h.fake.SlashCommand(ana, "C1", "a fox --n 9"))
	h.ephemeral(ana, "--n 9 is not allowed: use a number from 1 to 4")

	ts, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: bob, Text: "<@" + h.fake.BotUserID + "> a fox --quality ultra"})
	h.deliver(envs...)
	if e := h.ephemeral(bob, "--quality ultra"); e.ThreadTS != ts || e.Channel != "C1" {
		t.Errorf("mention's error shown in %s/%s, want its thread", e.Channel, e.ThreadTS)
	}
	h.reacted("C1", ts)
	h.settle()
	if len(h.gen.Requests()) != 0 {
		t.Error("an invalid prompt reached the provider")
	}
	for _, m := range h.fake.Messages("C1") {
		if m.BotID != "" && !m.Deleted {
			t.Errorf("message %q left in the channel", m.Text)
		}
	}
}

func TestCommandWhereTheBotIsNotAMember(t *testing.T) {
	h := newHarness(t, options{})
	h.fake.Fail("chat.postMessage", "not_in_channel")
	h.deliver(h.fake.SlashCommand(ana, "C9", "a fox"))
	h.ephemeral(ana, "add me with /invite")
}

func TestDuplicateDeliveryStartsOneJob(t *testing.T) {
	h := newHarness(t, options{})
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> a kite"})
	mention := envs[1]
	retry := mention
	retry.RetryAttempt, retry.RetryReason = 1, "timeout"
	h.deliver(mention, retry, mention)

	cmd := h.fake.SlashCommand(bob, "C1", "a drum")
	h.deliver(cmd, cmd)
	h.images(2)
	h.settle()
	if n := len(h.gen.Requests()); n != 2 {
		t.Errorf("%d provider calls for 2 requests delivered 5 times", n)
	}
	if n := h.engine.handles.Load(); n != 2 {
		t.Errorf("%d Handle calls, want 2", n)
	}
}

func TestRateLimitIsHonoured(t *testing.T) {
	h := newHarness(t, options{})
	h.fake.RateLimit("chat.postMessage", time.Second)
	h.deliver(h.fake.SlashCommand(ana, "C1", "a fox"))
	h.root(ana, "C1", "a fox")
	calls := h.fake.Calls("chat.postMessage")
	if calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("statuses %d, %d; want 429 then 200", calls[0].Status, calls[1].Status)
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < time.Second {
		t.Errorf("retried after %s, before Retry-After's 1s", gap)
	}
	h.images(1)
}

func TestStatusMessageFollowsTheQueue(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate})
	root := h.queuedBehind(ana)
	h.fake.WaitFor(t, "the queued status", func() bool {
		for _, r := range h.fake.Replies("C1", root) {
			if strings.Contains(r.Text, "(1 more queued)") && !r.Deleted && r.Edits == 1 {
				return true
			}
		}
		return false
	})
	gate <- struct{}{}
	gate <- struct{}{}
	h.images(2)
	h.settle()
	statuses := 0
	for _, r := range h.fake.Replies("C1", root) {
		if r.BotID != "" && len(r.Files) == 0 && buttonsOf(r.Blocks)[cancelActionID] != "" {
			statuses++
			if !r.Deleted {
				t.Errorf("status %q left in the thread", r.Text)
			}
		}
	}
	if statuses != 2 {
		t.Errorf("%d status messages, want one per turn", statuses)
	}
}

func TestPreviewIsShownOncePerTurn(t *testing.T) {
	h := newHarness(t, options{partials: 3})
	root := h.slash(ana, "C1", "a bridge")
	h.images(1)
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "in fog", ThreadTS: root})
	h.deliver(envs...)
	h.images(2)
	previews := 0
	for _, u := range h.fake.Uploads() {
		if u.Title == "preview" {
			previews++
			if u.ThreadTS != root {
				t.Errorf("preview in thread %s", u.ThreadTS)
			}
		}
	}
	if previews != 2 {
		t.Errorf("%d previews for 2 turns of 3 partials each, want 2", previews)
	}
}

func TestReconnectAfterDisconnect(t *testing.T) {
	h := newHarness(t, options{})
	h.fake.Disconnect(t)
	h.fake.WaitFor(t, "a second connection", func() bool { return h.fake.Connected(t) == 2 })
	h.slash(ana, "C1", "a phoenix")
	h.images(1)
}

func TestThreadForResume(t *testing.T) {
	h := newHarness(t, options{})
	th, ok := h.bot.Thread(&core.Session{Platform: Platform, Thread: "C1/1700000001.000001"})
	if !ok {
		t.Fatal("no thread for a Slack session")
	}
	if got := th.(*thread); got.channel != "C1" || got.root != "1700000001.000001" {
		t.Errorf("thread %s/%s", got.channel, got.root)
	}
	if _, ok := h.bot.Thread(&core.Session{Platform: "console", Thread: "chat-1"}); ok {
		t.Error("a console session got a Slack thread")
	}
	if _, ok := h.bot.Thread(&core.Session{Platform: Platform, Thread: "garbage"}); ok {
		t.Error("a malformed key got a thread")
	}
}

// TestRefusedCommandsPostNothing sends slash commands and a mention that
// the engine refuses (too many in flight, over the quota, too long, too many
// images): each refusal is told to its sender alone, and nothing is posted
// in the channel and taken back, nor reacted to.
func TestRefusedCommandsPostNothing(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, options{gate: gate, engine: core.EngineConfig{MaxPerUser: 1, Quotas: core.Quotas{ImagesPerUserDay: 2}}})
	h.slash(ana, "C1", "a clock")
	h.fake.WaitFor(t, "the first render", func() bool { return len(h.gen.Requests()) == 1 })

	refusals := []struct{ user, text, says string }{
		{ana, "a second clock", "you already have 1 requests in progress"},
		{bob, "a fox --n 3", "only 2 of your 2 images"},
		{bob, strings.Repeat("a fox ", 700), "the limit is 4000"},
		{bob, "a fox --n 9", "--n 9 is not allowed"},
	}
	for _, r := range refusals {
		h.deliver(h.fake.SlashCommand(r.user, "C1", r.text))
		if e := h.ephemeral(r.user, r.says); !e.ResponseURL {
			t.Errorf("%q: refusal %+v, want it through the command's response URL", r.says, e)
		}
	}
	before := len(h.fake.Ephemerals())
	ts, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: bob, Text: "<@" + h.fake.BotUserID + "> a fox --n 3"})
	h.deliver(envs...)
	h.fake.WaitFor(t, "the mention's refusal", func() bool { return len(h.fake.Ephemerals()) > before })
	if e := h.fake.Ephemerals()[before]; e.User != bob || e.ThreadTS != ts || !strings.Contains(e.Text, "only 2 of your 2 images") {
		t.Errorf("the mention's refusal is %+v, want it to bob in thread %s", e, ts)
	}
	gate <- struct{}{}
	h.images(1)
	h.settle()
	for _, m := range h.fake.Messages("C1") {
		if m.BotID != "" && m.ThreadTS == "" && (m.Deleted || m.Text != "<@"+ana+">: a clock") {
			t.Errorf("message %q (deleted %v) in the channel", m.Text, m.Deleted)
		}
	}
	for _, c := range h.fake.Calls("reactions.add") {
		if c.Params["timestamp"] == ts {
			t.Errorf("reacted %s to the refused mention", c.Params["name"])
		}
	}
}
