package slacktest_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// The assistant.threads methods refuse what Slack refuses: missing
// arguments, an app without the feature, a thread that is not there (or,
// for prompts, not the assistant pane's), prompts that are not one to
// four with a title and a message each.
func TestAssistantMethods(t *testing.T) {
	s := slacktest.NewServer(t)
	status := url.Values{"channel_id": {"DU1"}, "thread_ts": {"1.000001"}, "status": {"is drawing…"}}
	if _, _, b := post(t, s, "assistant.threads.setStatus", s.BotToken, status); b["error"] != "not_allowed" {
		t.Errorf("setStatus without the feature: %v", b)
	}
	s.SetAssistant(true)
	channel, ts, env := s.StartAssistantThread(t, "U1", "C1")
	var started struct {
		Event struct {
			Type   string `json:"type"`
			Thread struct {
				User    string `json:"user_id"`
				Channel string `json:"channel_id"`
				TS      string `json:"thread_ts"`
				Context struct {
					Channel string `json:"channel_id"`
				} `json:"context"`
			} `json:"assistant_thread"`
		} `json:"event"`
	}
	if err := json.Unmarshal(env.Payload, &started); err != nil || started.Event.Type != "assistant_thread_started" ||
		started.Event.Thread.User != "U1" || started.Event.Thread.Channel != channel || started.Event.Thread.TS != ts ||
		started.Event.Thread.Context.Channel != "C1" {
		t.Fatalf("assistant_thread_started %s (%v)", env.Payload, err)
	}

	for _, c := range []struct {
		params url.Values
		want   string
	}{
		{url.Values{"thread_ts": {ts}, "status": {"x"}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "status": {"x"}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {"9.000009"}, "status": {"x"}}, "invalid_thread_ts"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "status": {"x"}, "loading_messages": {"a,b,c,d,e,f,g,h,i,j,k"}}, "invalid_arguments"},
	} {
		if _, _, b := post(t, s, "assistant.threads.setStatus", s.BotToken, c.params); b["error"] != c.want {
			t.Errorf("setStatus %v: %v, want %s", c.params, b, c.want)
		}
	}
	set := url.Values{"channel_id": {channel}, "thread_ts": {ts}, "status": {"is drawing…"}}
	if _, _, b := post(t, s, "assistant.threads.setStatus", s.BotToken, set); b["ok"] != true {
		t.Fatalf("setStatus: %v", b)
	}
	if at, _ := s.Assistant(channel, ts); at.Status != "is drawing…" {
		t.Errorf("status %q after setStatus", at.Status)
	}
	// A message the app posts in the thread clears it.
	if _, _, b := post(t, s, "chat.postMessage", s.BotToken, url.Values{"channel": {channel}, "thread_ts": {ts}, "text": {"done"}}); b["ok"] != true {
		t.Fatalf("postMessage: %v", b)
	}
	if at, _ := s.Assistant(channel, ts); at.Status != "" || len(at.Statuses) != 1 {
		t.Errorf("after the app's message: %+v", at)
	}

	prompts := func(n int, title string) string {
		ps := make([]slacktest.Prompt, n)
		for i := range ps {
			ps[i] = slacktest.Prompt{Title: title, Message: "a fox"}
		}
		b, _ := json.Marshal(ps)
		return string(b)
	}
	for _, c := range []struct {
		params url.Values
		want   string
	}{
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "prompts": {prompts(5, "Fox")}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "prompts": {prompts(0, "Fox")}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "prompts": {prompts(1, "")}}, "invalid_arguments"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "prompts": {"not json"}}, "invalid_arguments"},
		{url.Values{"channel_id": {"C1"}, "thread_ts": {ts}, "prompts": {prompts(1, "Fox")}}, "invalid_thread_ts"},
		{url.Values{"channel_id": {channel}, "thread_ts": {ts}, "prompts": {prompts(4, "Fox")}, "title": {"Try"}}, ""},
	} {
		_, _, b := post(t, s, "assistant.threads.setSuggestedPrompts", s.BotToken, c.params)
		if got, _ := b["error"].(string); got != c.want {
			t.Errorf("setSuggestedPrompts %v: %v, want %q", c.params, b, c.want)
		}
	}
	if at, _ := s.Assistant(channel, ts); at.PromptsTitle != "Try" || len(at.Prompts) != 4 {
		t.Errorf("prompts %q %+v", at.PromptsTitle, at.Prompts)
	}

	// The person's messages in the thread carry what Slack adds to them.
	_, envs := s.Post(slacktest.Post{Channel: channel, User: "U1", Text: "a fox", ThreadTS: ts})
	var msg struct {
		Event struct {
			ChannelType string         `json:"channel_type"`
			Assistant   map[string]any `json:"assistant_thread"`
			Parent      string         `json:"parent_user_id"`
		} `json:"event"`
	}
	if len(envs) != 1 || json.Unmarshal(envs[0].Payload, &msg) != nil || msg.Event.ChannelType != "im" ||
		msg.Event.Assistant["action_token"] == nil || msg.Event.Parent != s.BotUserID {
		t.Errorf("message in the assistant thread: %s", envs[0].Payload)
	}
	changed := s.ChangeAssistantContext(t, channel, ts, "C2")
	if at, _ := s.Assistant(channel, ts); at.Context != "C2" || json.Unmarshal(changed.Payload, &started) != nil ||
		started.Event.Type != "assistant_thread_context_changed" || started.Event.Thread.Context.Channel != "C2" {
		t.Errorf("context change %s", changed.Payload)
	}
}
