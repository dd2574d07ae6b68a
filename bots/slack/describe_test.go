package slack

import (
	"context"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// suggestions waits for the suggestion buttons in the thread of ts and
// returns their message and values by action_id.
func (h *harness) suggestions(channel, ts string) (slacktest.Message, map[string]string) {
	h.t.Helper()
	var msg slacktest.Message
	var values map[string]string
	h.fake.WaitFor(h.t, "suggestion buttons", func() bool {
		for _, m := range h.fake.Replies(channel, ts) {
			if b := buttonsOf(m.Blocks); b["use_1"] != "" {
				msg, values = m, b
				return true
			}
		}
		return false
	})
	return msg, values
}

// askDescribe posts "@Easel describe" by user in C1 with files and
// delivers it, returning its ts.
func (h *harness) askDescribe(user string, files ...slacktest.File) string {
	h.t.Helper()
	ts, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: user, Text: "<@" + h.fake.BotUserID + "> describe", Files: files})
	h.deliver(envs...)
	return ts
}

// TestDescribeSlashCommandExplains: /describe, which carries no file,
// tells its user alone how to ask.
func TestDescribeSlashCommandExplains(t *testing.T) {
	h := newHarness(t, options{})
	h.deliver(h.fake.Slash(DescribeCommand, ana, "C1", ""))
	if e := h.ephemeral(ana, "@Easel describe"); !e.ResponseURL {
		t.Errorf("explanation %+v, want it through the response URL", e)
	}
	if n := h.engine.handles.Load(); n != 0 {
		t.Errorf("%d messages reached the engine", n)
	}
}

// TestDescribeMention: "@Easel describe" with an image gets the
// suggestions in its thread with a button each; only its asker (or an
// admin) may press one, and pressing 2 starts a new session with the
// second suggestion in a new thread; the describe counts in the usage.
func TestDescribeMention(t *testing.T) {
	h := newHarness(t, options{})
	ts := h.askDescribe(ana, h.fake.AddFile(ana, "cat.png", "image/png", testPNG(5)))
	msg, values := h.suggestions("C1", ts)
	for i, s := range coretest.Suggestions {
		if !strings.Contains(msg.Text, s) {
			t.Errorf("suggestion %d %q missing from %q", i+1, s, msg.Text)
		}
	}
	if len(values) != len(coretest.Suggestions) {
		t.Fatalf("buttons %v", values)
	}

	h.deliver(h.fake.Click(t, bob, "C1", msg.TS, "use_2"))
	h.ephemeral(bob, "only ana")

	h.deliver(h.fake.Click(t, ana, "C1", msg.TS, "use_2"))
	root := h.root(ana, "C1", coretest.Suggestions[1])
	h.buttons("C1", root, 1)
	if reqs := h.gen.Requests(); len(reqs) != 1 || reqs[0].Prompt != coretest.Suggestions[1] || reqs[0].Kind != core.KindGenerate {
		t.Errorf("requests %+v, want one generation of suggestion 2", reqs)
	}
	rows, err := h.db.Usage(context.Background(), "workspace/"+Platform+"/")
	if err != nil {
		t.Fatal(err)
	}
	var turns, images int64
	var cost float64
	for _, r := range rows {
		turns, images, cost = turns+r.Turns, images+r.Images, cost+r.CostUSD
	}
	if turns != 2 || images != 1 || cost < 0.0149 || cost > 0.0151 {
		t.Errorf("usage %d turns, %d images, $%v; want the describe and the generation: 2, 1, $0.015", turns, images, cost)
	}
}

// TestDescribeRefusals: no image, a file that is no image and a provider
// error are told to the asker alone, and post no suggestions.
func TestDescribeRefusals(t *testing.T) {
	h := newHarness(t, options{})
	ts := h.askDescribe(ana)
	h.ephemeral(ana, "attach the image to describe")
	ts2 := h.askDescribe(ana, h.fake.AddFile(ana, "notes.png", "image/png", []byte("not an image at all, just words")))
	h.ephemeral(ana, "notes.png is not an image Easel can use")
	h.gen.Fail(core.Errorf(core.RateLimited, "OpenAI is rate-limiting requests right now; try again in a minute."))
	ts3 := h.askDescribe(ana, h.fake.AddFile(ana, "cat.png", "image/png", testPNG(5)))
	h.ephemeral(ana, "rate-limiting")
	h.settle()
	for _, root := range []string{ts, ts2, ts3} {
		for _, m := range h.fake.Replies("C1", root) {
			if m.BotID != "" {
				t.Errorf("a reply was posted for a refused describe: %q", m.Text)
			}
		}
	}
}
