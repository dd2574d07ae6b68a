package slack

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

func TestHTTPModeURLVerification(t *testing.T) {
	h := newHarness(t, options{http: true})
	status, body := h.fake.PostHTTP(t, h.url, slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), slacktest.Signing{})
	var got struct{ Challenge string }
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil || got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("challenge answered %d %q", status, body)
	}
}

func TestHTTPModeFlows(t *testing.T) {
	h := newHarness(t, options{http: true})
	start := time.Now()
	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.SlashCommand(ana, "C1", "a fox"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("command answered %d", status)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("command answered after %s", d)
	}
	root := h.root(ana, "C1", "a fox")
	h.images(1)
	b1, _ := h.buttons("C1", root, 1)

	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it blue", ThreadTS: root})
	for _, env := range envs {
		if status, _ := h.fake.PostHTTP(t, h.url, env, slacktest.Signing{}); status != http.StatusOK {
			t.Fatalf("event answered %d", status)
		}
	}
	h.images(2)
	// Slack retries an event it thinks timed out: same event id, one job.
	retry := envs[0]
	retry.RetryAttempt = 1
	h.fake.PostHTTP(t, h.url, retry, slacktest.Signing{})

	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.Click(t, ana, "C1", b1, "regenerate"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("interaction answered %d", status)
	}
	h.images(3)
	h.settle()
	if n := len(h.gen.Requests()); n != 3 {
		t.Errorf("%d provider calls, want 3", n)
	}
}

func TestHTTPModeRejectsBadSignatures(t *testing.T) {
	h := newHarness(t, options{http: true})
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> a fox"})
	deliveries := append(envs, h.fake.SlashCommand(ana, "C1", "a fox"), slacktest.URLVerification("x"))
	bad := map[string]slacktest.Signing{
		"wrong secret": {Secret: "not-the-secret"},
		"unsigned":     {Unsigned: true},
		"expired":      {Timestamp: time.Now().Add(-6 * time.Minute)},
		"future":       {Timestamp: time.Now().Add(6 * time.Minute)},
	}
	for name, sig := range bad {
		for _, env := range deliveries {
			if status, _ := h.fake.PostHTTP(t, h.url, env, sig); status != http.StatusUnauthorized {
				t.Errorf("%s %s: answered %d, want 401", name, env.Type, status)
			}
		}
	}
	if n := h.engine.handles.Load() + h.engine.sessions.Load() + h.log.marks.Load(); n != 0 {
		t.Errorf("%d calls reached the engine or the event log", n)
	}
	if calls := h.fake.Calls(""); len(calls) != 1 || calls[0].Method != "auth.test" {
		t.Errorf("Web API calls after rejected requests: %d", len(calls))
	}
}

func TestHTTPModeCapsTheBody(t *testing.T) {
	h := newHarness(t, options{http: true})
	env := h.fake.Event(map[string]any{"type": "message", "text": string(make([]byte, maxBody))})
	if status, _ := h.fake.PostHTTP(t, h.url, env, slacktest.Signing{}); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body answered %d", status)
	}
}
