package slack

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
)

// turns waits until the session of thread root in channel has n turns,
// each ended, and returns their texts in order.
func (h *harness) turns(channel, root string, n int) []string {
	h.t.Helper()
	var texts []string
	h.fake.WaitFor(h.t, "the session's turns", func() bool {
		s, err := h.db.SessionByThread(context.Background(), Platform, threadKey(channel, root))
		if err != nil || len(s.Turns) < n {
			return false
		}
		texts = texts[:0]
		for _, tr := range s.Turns {
			if tr.Status.Active() {
				return false
			}
			texts = append(texts, tr.Text)
		}
		return true
	})
	return texts
}

// checkTurns fails the test unless texts are want.
func checkTurns(t *testing.T, texts []string, want ...string) {
	t.Helper()
	if len(texts) != len(want) {
		t.Fatalf("turns %q, want %q", texts, want)
	}
	for i := range want {
		if texts[i] != want[i] {
			t.Fatalf("turns %q, want %q", texts, want)
		}
	}
}

// A reply delivered before the mention that started its thread (Slack
// promises no order, and retries a delivery a minute late) waits for the
// mention's session instead of being ignored, and refines its image.
func TestReplyBeforeItsMention(t *testing.T) {
	h := newHarness(t, options{})
	root, mention := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> a lighthouse"})
	reply, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it red", ThreadTS: root})
	h.deliver(envs...)
	h.deliver(mention...)
	checkTurns(t, h.turns("C1", root, 2), "a lighthouse", "make it red")
	h.images(2)
	h.reacted("C1", reply, reactDone)
	if reqs := h.gen.Requests(); len(reqs) != 2 || reqs[1].Kind != core.KindRefine {
		t.Errorf("provider requests %+v, want a generate then an edit", reqs)
	}
}

// A reply in the thread of a slash command's root message, handled while
// the command's turn is still being recorded, reaches the session once it
// is.
func TestReplyBeforeTheCommandsTurn(t *testing.T) {
	rooted, release := make(chan string, 1), make(chan struct{})
	var once sync.Once
	h := newHarness(t, options{})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the harness stops
	h.fake.Intercept(func(method string, params map[string]string) {
		if method == "reactions.add" && params["name"] == reactWorking {
			h.fake.Intercept(nil)
			rooted <- params["timestamp"]
			<-release // the command's turn is not recorded until then
		}
	})
	h.deliver(h.fake.SlashCommand(ana, "C1", "a harbour at night"))
	root := <-rooted
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: bob, Text: "add a moon", ThreadTS: root})
	h.deliver(envs...)
	h.fake.WaitFor(t, "the reply's session lookup", func() bool { return h.engine.sessions.Load() >= 1 })
	once.Do(func() { close(release) })
	checkTurns(t, h.turns("C1", root, 2), "a harbour at night", "add a moon")
	h.images(2)
}

// Deliveries a stopped process recorded in the wrong order, a reply before
// the mention that starts its thread, are both handled on the next start,
// the mention first.
func TestReplyBeforeItsMentionAfterARestart(t *testing.T) {
	var root string
	h := newHarness(t, options{before: func(fake *slacktest.Server, db *storage.DB) {
		var mention []slacktest.Envelope
		root, mention = fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + fake.BotUserID + "> a kite"})
		_, reply := fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it green", ThreadTS: root})
		for _, env := range append(reply, mention...) {
			var ev struct {
				ID string `json:"event_id"`
			}
			if err := json.Unmarshal(env.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Receive(context.Background(), Platform+":"+ev.ID, env.Type, env.Payload, eventTTL); err != nil {
				t.Fatal(err)
			}
		}
	}})
	checkTurns(t, h.turns("C1", root, 2), "a kite", "make it green")
	h.images(2)
	h.settle()
	left, err := h.db.Unhandled(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range left {
		t.Errorf("delivery %s left unhandled", d.Key)
	}
}
