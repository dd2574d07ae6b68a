package slack

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/storage"
)

// A delivery an earlier process recorded and acknowledged, but stopped
// before handling, is handled on the next start; Slack's retry of it,
// arriving after the restart, starts nothing more.
func TestDeliveryLeftByACrashIsHandledOnce(t *testing.T) {
	var env slacktest.Envelope
	var trigger string
	h := newHarness(t, options{before: func(fake *slacktest.Server, db *storage.DB) {
		env = fake.SlashCommand(ana, "C1", "a fox left behind")
		var cmd struct {
			TriggerID string `json:"trigger_id"`
		}
		if err := json.Unmarshal(env.Payload, &cmd); err != nil || cmd.TriggerID == "" {
			t.Fatalf("slash command payload without trigger_id: %s", env.Payload)
		}
		trigger = cmd.TriggerID
		if _, err := db.Receive(context.Background(), Platform+":"+trigger, env.Type, env.Payload, eventTTL); err != nil {
			t.Fatal(err)
		}
	}})
	root := h.root(ana, "C1", "a fox left behind")
	h.images(1)
	h.reacted("C1", root, reactDone)

	env.RetryAttempt, env.RetryReason = 1, "timeout"
	h.deliver(env)
	h.settle()
	if n := len(h.gen.Requests()); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
	roots := 0
	for _, m := range h.fake.Messages("C1") {
		if m.ThreadTS == "" && m.BotID != "" {
			roots++
		}
	}
	if roots != 1 {
		t.Errorf("%d root messages, want 1", roots)
	}
	if left, err := h.db.Unhandled(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("deliveries left unhandled: %v, %v", left, err)
	}
}

// Every kind of delivery is recorded before its ack, under its own id, and
// one Easel ignores is not recorded at all.
func TestDeliveriesAreRecordedBeforeTheAck(t *testing.T) {
	h := newHarness(t, options{})
	root := h.slash(ana, "C1", "a heron")
	h.images(1)
	if h.log.marks.Load() != 1 {
		t.Errorf("%d deliveries recorded for one slash command", h.log.marks.Load())
	}
	// A message in a channel, outside any thread, is not Easel's business.
	h.deliver(h.fake.Event(map[string]any{"type": "message", "channel": "C1", "channel_type": "channel",
		"user": bob, "text": "lunch?", "ts": "1.000001"}))
	if h.log.marks.Load() != 1 {
		t.Errorf("an ignored message was recorded (%d records)", h.log.marks.Load())
	}
	h.reacted("C1", root, reactDone)
}
