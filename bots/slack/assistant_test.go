package slack

import (
	"slices"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
)

// assistantRefusal is what the bot logs when Slack refuses the pane.
const assistantRefusal = "Slack refused an assistant pane method"

// prompted waits until the assistant thread ts in channel has suggested
// prompts and returns it.
func (h *harness) prompted(channel, ts string) slacktest.AssistantThread {
	h.t.Helper()
	var at slacktest.AssistantThread
	h.fake.WaitFor(h.t, "suggested prompts", func() bool {
		at, _ = h.fake.Assistant(channel, ts)
		return len(at.Prompts) > 0
	})
	return at
}

// statuses returns the loading statuses set in the thread ts of channel.
func (h *harness) statuses(channel, ts string) []string {
	at, _ := h.fake.Assistant(channel, ts)
	return at.Statuses
}

// A thread of the assistant pane: its start gets prompts made from the
// styles, the default style of the channel the person views first; a
// message there starts a session in the thread, with the pane's loading
// status while it renders, cleared once the image is posted; a reply
// refines it.
func TestAssistantThread(t *testing.T) {
	gate := make(chan struct{})
	h := styled(t, options{gate: gate})
	h.fake.SetAssistant(true)
	h.style(ana, "C1", "set noir black and white film still")
	h.style(ana, "C1", "channel --style noir")

	channel, root, env := h.fake.StartAssistantThread(t, bob, "C1")
	h.deliver(env)
	at := h.prompted(channel, root)
	want := []slacktest.Prompt{
		{Title: "Use the noir style", Message: "a product shot --style noir"},
		{Title: "Use the brand style", Message: "a poster for the team offsite --style brand"},
		{Title: starters[0].Title, Message: starters[0].Message},
		{Title: starters[1].Title, Message: starters[1].Message},
	}
	if at.PromptsTitle != "Start with a style" || !slices.Equal(at.Prompts, want) {
		t.Errorf("suggested %q %+v, want the channel's style first, then the others, then starters: %+v", at.PromptsTitle, at.Prompts, want)
	}

	ts, envs := h.fake.Post(slacktest.Post{Channel: channel, User: bob, Text: at.Prompts[1].Message, ThreadTS: root})
	h.deliver(envs...)
	h.fake.WaitFor(t, "the loading status while it renders", func() bool {
		a, _ := h.fake.Assistant(channel, root)
		return a.Status == assistantStatus && len(h.gen.Requests()) == 1
	})
	gate <- struct{}{}
	up := h.images(1)[0]
	if up.Channel != channel || up.ThreadTS != root {
		t.Errorf("image posted in %s/%s, want the assistant thread %s/%s", up.Channel, up.ThreadTS, channel, root)
	}
	if req := h.gen.Requests()[0]; req.Kind != core.KindGenerate || req.Prompt != "a poster for the team offsite, flat vector art, navy and gold" {
		t.Errorf("provider got %s %q", req.Kind, req.Prompt)
	}
	h.reacted(channel, ts, reactDone)
	h.settle()
	if got := h.statuses(channel, root); !slices.Equal(got, []string{assistantStatus, ""}) {
		t.Errorf("loading statuses %q, want set while it rendered, then cleared", got)
	}

	reply, envs := h.fake.Post(slacktest.Post{Channel: channel, User: bob, Text: "make it night", ThreadTS: root})
	h.deliver(envs...)
	gate <- struct{}{}
	h.images(2)
	h.reacted(channel, reply, reactDone)
	h.settle()
	if req := h.gen.Requests()[1]; req.Kind != core.KindRefine || req.Prompt != "make it night" {
		t.Errorf("the reply asked for %s %q, want a refinement", req.Kind, req.Prompt)
	}
	if got := h.statuses(channel, root); !slices.Equal(got, []string{assistantStatus, "", assistantStatus, ""}) {
		t.Errorf("loading statuses %q after the reply", got)
	}
	if strings.Contains(h.logs.String(), assistantRefusal) {
		t.Error("the pane was refused")
	}
}

// A preview posted while it renders clears the loading status, as any
// message of the app's does, so it is set again until the image comes.
func TestAssistantStatusOutlastsThePreview(t *testing.T) {
	h := newHarness(t, options{partials: 1})
	h.fake.SetAssistant(true)
	channel, root, env := h.fake.StartAssistantThread(t, ana, "")
	h.deliver(env)
	_, envs := h.fake.Post(slacktest.Post{Channel: channel, User: ana, Text: "a lantern", ThreadTS: root})
	h.deliver(envs...)
	h.images(1)
	h.settle()
	if got := h.statuses(channel, root); !slices.Equal(got, []string{assistantStatus, assistantStatus, ""}) {
		t.Errorf("loading statuses %q, want set, set again after the preview, cleared", got)
	}
}

// Without styles the prompts are starters; when the person views another
// channel, a thread with no session yet gets prompts for that channel,
// one with a session none. In http mode, like every delivery.
func TestAssistantContextChanged(t *testing.T) {
	h := styled(t, options{http: true})
	h.fake.SetAssistant(true)
	calls := func() int { return len(h.fake.Calls(methodSetPrompts)) }
	h.style(ana, "C2", "channel --style brand")

	channel, root, env := h.fake.StartAssistantThread(t, bob, "")
	h.deliver(env)
	if at := h.prompted(channel, root); at.Prompts[0].Title != "Use the brand style" || len(at.Prompts) != 4 {
		t.Errorf("prompts %+v", at.Prompts)
	}
	h.style(ana, "C1", "set noir grain")
	h.deliver(h.fake.ChangeAssistantContext(t, channel, root, "C1"))
	h.fake.WaitFor(t, "prompts for C1", func() bool { return calls() == 2 })
	if at, _ := h.fake.Assistant(channel, root); at.Prompts[0].Title != "Use the brand style" || at.Prompts[1].Title != "Use the noir style" {
		t.Errorf("prompts for C1, which has no defaults: %+v", at.Prompts)
	}
	h.deliver(h.fake.ChangeAssistantContext(t, channel, root, "C2"))
	h.fake.WaitFor(t, "prompts for C2", func() bool { return calls() == 3 })
	if at, _ := h.fake.Assistant(channel, root); at.Prompts[0].Title != "Use the brand style" {
		t.Errorf("prompts for C2, whose default is brand: %+v", at.Prompts)
	}

	_, envs := h.fake.Post(slacktest.Post{Channel: channel, User: bob, Text: "a kite", ThreadTS: root})
	h.deliver(envs...)
	h.images(1)
	h.deliver(h.fake.ChangeAssistantContext(t, channel, root, "C1"))
	h.settle()
	if n := calls(); n != 3 {
		t.Errorf("%d prompt suggestions, want none once the thread has a session", n)
	}

	// A workspace without styles gets starters.
	h2 := newHarness(t, options{})
	h2.fake.SetAssistant(true)
	channel, root, env = h2.fake.StartAssistantThread(t, ana, "C1")
	h2.deliver(env)
	at := h2.prompted(channel, root)
	if at.PromptsTitle != "Try one of these" || len(at.Prompts) != len(starters) || at.Prompts[0].Message != starters[0].Message {
		t.Errorf("prompts without styles %q %+v", at.PromptsTitle, at.Prompts)
	}
}

// An app without the feature gets no assistant events, and Slack refuses
// the loading status of its DM threads: the refusal is logged once and
// not asked again, and every turn completes.
func TestAssistantFeatureOff(t *testing.T) {
	h := newHarness(t, options{})
	ts, envs := h.fake.Post(slacktest.Post{Channel: "D1", User: ana, Text: "a paper boat"})
	h.deliver(envs...)
	h.images(1)
	h.reacted("D1", ts, reactDone)
	reply, envs := h.fake.Post(slacktest.Post{Channel: "D1", User: ana, Text: "make it red", ThreadTS: ts})
	h.deliver(envs...)
	h.images(2)
	h.reacted("D1", reply, reactDone)
	h.settle()
	calls := h.fake.Calls(methodSetStatus)
	if len(calls) != 1 || calls[0].Error != "not_allowed" {
		t.Errorf("setStatus calls %+v, want one, refused", calls)
	}
	if n := strings.Count(h.logs.String(), assistantRefusal); n != 1 {
		t.Errorf("the refusal logged %d times, want once", n)
	}
	for _, r := range h.fake.Replies("D1", ts) {
		if strings.Contains(r.Text, "rendering") && !r.Deleted {
			t.Errorf("status message %q left in the thread", r.Text)
		}
	}
}

// A pane whose scope for suggested prompts is missing (the feature turned
// on, the app not reinstalled) still shows the loading status and
// completes the turn; the refusal is logged once however many threads
// start.
func TestAssistantMissingScope(t *testing.T) {
	h := newHarness(t, options{})
	h.fake.SetAssistant(true)
	for range 2 {
		h.fake.Fail(methodSetPrompts, "missing_scope")
	}
	channel, root, env := h.fake.StartAssistantThread(t, ana, "")
	h.deliver(env)
	h.fake.WaitFor(t, "the refused prompts", func() bool { return len(h.fake.Calls(methodSetPrompts)) == 1 })
	_, envs := h.fake.Post(slacktest.Post{Channel: channel, User: ana, Text: "a comet", ThreadTS: root})
	h.deliver(envs...)
	h.images(1)
	h.settle()
	if got := h.statuses(channel, root); !slices.Equal(got, []string{assistantStatus, ""}) {
		t.Errorf("loading statuses %q", got)
	}
	_, _, env = h.fake.StartAssistantThread(t, ana, "")
	h.deliver(env)
	h.fake.WaitFor(t, "the second refused prompts", func() bool { return len(h.fake.Calls(methodSetPrompts)) == 2 })
	h.settle()
	if n := strings.Count(h.logs.String(), assistantRefusal); n != 1 {
		t.Errorf("the refusal logged %d times, want once", n)
	}
}
