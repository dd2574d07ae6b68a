package slack

import (
	"context"
	"slices"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// TestReconnectsAfterEveryKindOfDisconnect: whatever ends a Socket Mode
// connection (each disconnect envelope Slack sends, or the TCP connection
// dying without a close frame), the bot opens a new one through
// apps.connections.open, gets a new hello, and the next command works.
func TestReconnectsAfterEveryKindOfDisconnect(t *testing.T) {
	cases := []struct {
		name string
		end  func(t *testing.T, fake *slacktest.Server)
	}{
		{"refresh_requested", func(t *testing.T, f *slacktest.Server) { f.DisconnectWith(t, slacktest.DisconnectRefresh) }},
		{"warning", func(t *testing.T, f *slacktest.Server) { f.DisconnectWith(t, slacktest.DisconnectWarning) }},
		{"link_disabled", func(t *testing.T, f *slacktest.Server) { f.DisconnectWith(t, slacktest.DisconnectLinkDisabled) }},
		{"tcp_close", func(t *testing.T, f *slacktest.Server) { f.Drop(t, false) }},
		{"tcp_reset", func(t *testing.T, f *slacktest.Server) { f.Drop(t, true) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, options{})
			opens, hellos := len(h.fake.Calls("apps.connections.open")), h.fake.Connections()
			c.end(t, h.fake)
			h.fake.WaitFor(t, "a new connection", func() bool {
				return len(h.fake.Calls("apps.connections.open")) == opens+1 && h.fake.Connections() == hellos+1
			})
			root := h.slash(ana, "C1", "a phoenix "+c.name)
			if up := h.images(1)[0]; up.ThreadTS != root {
				t.Errorf("image in thread %s, want %s", up.ThreadTS, root)
			}
		})
	}
}

// TestRedeliveryAfterReconnectStartsNoSecondJob: the bot handles an
// envelope and acks it, the ack is lost with the connection, and Slack
// redelivers the envelope (retry_attempt 1, reason timeout) on the next
// connection. The redelivery is acknowledged and dropped: one turn, one
// image, one root message. With one worker, a later command is handled
// after anything the redelivery queued, so its result marks the point by
// which a second job would have shown.
func TestRedeliveryAfterReconnectStartsNoSecondJob(t *testing.T) {
	oneWorker := func(c *Config) { c.Workers = 1 }
	t.Run("mention then TCP reset", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, options{cfg: oneWorker})
		h.fake.LoseAcks(t)
		ts, envs := h.fake.Post(slacktest.Post{Channel: "C2", User: ana, Text: "<@" + h.fake.BotUserID + "> a lantern"})
		var ids []string
		for _, env := range envs {
			ids = append(ids, h.fake.Send(t, env))
		}
		h.images(1)
		h.settle()

		h.fake.Drop(t, true)
		redelivered(t, h, ids)
		h.slash(bob, "C3", "a marker")
		h.images(2)
		h.settle()
		h.exactlyOneJob("C2", ts, "a lantern")
	})
	t.Run("slash command mid-render then refresh", func(t *testing.T) {
		t.Parallel()
		gate := make(chan struct{})
		h := newHarness(t, options{gate: gate, cfg: oneWorker})
		h.fake.LoseAcks(t)
		id := h.fake.Send(t, h.fake.SlashCommand(ana, "C1", "a lantern"))
		root := h.root(ana, "C1", "a lantern")
		h.fake.WaitFor(t, "the render to start", func() bool { return h.gen.Calls.Load() == 1 })

		h.fake.DisconnectWith(t, slacktest.DisconnectRefresh)
		redelivered(t, h, []string{id})
		gate <- struct{}{}
		h.images(1)
		h.slash(bob, "C3", "a marker")
		gate <- struct{}{}
		h.images(2)
		h.settle()
		h.exactlyOneJob("C1", root, "a lantern")
		var roots int
		for _, m := range h.fake.Messages("C1") {
			if m.BotID != "" && m.ThreadTS == "" {
				roots++
			}
		}
		if roots != 1 {
			t.Errorf("%d root messages, want 1", roots)
		}
	})
}

// TestRetryOfUnseenEnvelopeIsHandled: a redelivery whose first delivery
// never reached the bot (it was lost with its connection) is handled like a
// first delivery, not dropped for carrying a retry.
func TestRetryOfUnseenEnvelopeIsHandled(t *testing.T) {
	h := newHarness(t, options{})
	env := h.fake.SlashCommand(ana, "C1", "a comet")
	env.RetryAttempt, env.RetryReason = 2, "timeout"
	h.deliver(env)
	root := h.root(ana, "C1", "a comet")
	if up := h.images(1)[0]; up.ThreadTS != root {
		t.Errorf("image in thread %s, want %s", up.ThreadTS, root)
	}
}

// redelivered waits until each of the envelopes ids was delivered again on
// a new connection and that redelivery was acknowledged.
func redelivered(t *testing.T, h *harness, ids []string) {
	t.Helper()
	h.fake.WaitFor(t, "the redeliveries", func() bool {
		var of []string
		for _, r := range h.fake.Redeliveries() {
			of = append(of, r.Of)
		}
		for _, id := range ids {
			if !slices.Contains(of, id) {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if ack := h.fake.WaitAcked(t, id); ack.RetryAttempt != 1 {
			t.Errorf("envelope %s acknowledged as retry %d, want the redelivery (1)", id, ack.RetryAttempt)
		}
	}
}

// exactlyOneJob checks that the session of thread root in channel has one
// turn, the provider was asked for prompt once and the thread got one
// result image.
func (h *harness) exactlyOneJob(channel, root, prompt string) {
	h.t.Helper()
	sess, err := h.engine.Session(context.Background(), Platform, threadKey(channel, root))
	if err != nil {
		h.t.Fatalf("session: %v", err)
	}
	if n := len(sess.Turns); n != 1 {
		h.t.Errorf("%d turns in the session, want 1", n)
	}
	var asked int
	for _, r := range h.gen.Requests() {
		if r.Prompt == prompt {
			asked++
		}
	}
	if asked != 1 {
		h.t.Errorf("the provider was asked for %q %d times, want 1", prompt, asked)
	}
	var results int
	for _, u := range h.fake.Uploads() {
		if u.Completed && u.ThreadTS == root && len(u.Title) > 0 && u.Title[0] == 'v' {
			results++
		}
	}
	if results != 1 {
		h.t.Errorf("%d result images in the thread, want 1", results)
	}
}
