package slacktest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Limits of the assistant.threads methods, as Slack documents them.
const (
	// MaxSuggestedPrompts is how many prompts one
	// assistant.threads.setSuggestedPrompts call may set.
	MaxSuggestedPrompts = 4
	// maxLoadingMessages is how many loading_messages one
	// assistant.threads.setStatus call may rotate through.
	maxLoadingMessages = 10
)

// AssistantThread is a thread of the app's assistant pane (Slack's
// "Agents & AI Apps"), or another thread whose loading status the app
// set, as Slack keeps it.
type AssistantThread struct {
	Channel string // the DM between the person and the app
	TS      string // the thread's root
	// Started is set for a thread the person opened in the assistant
	// pane (StartAssistantThread); User and Context are its.
	Started bool
	User    string
	Context string // the channel the person was viewing, "" for none
	// Statuses are the statuses assistant.threads.setStatus set, in
	// order, "" for a clear.
	Statuses []string
	// Status is the loading status shown now: the last one set, or ""
	// once cleared, by the app or by a message it posted in the thread.
	Status string
	// PromptsTitle and Prompts are the latest suggested prompts.
	PromptsTitle string
	Prompts      []Prompt
}

// Prompt is a suggested prompt of an assistant thread.
type Prompt struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

// SetAssistant turns the app's Agents & AI Apps feature on or off (off by
// default). While it is off, assistant.threads.setStatus and
// assistant.threads.setSuggestedPrompts answer not_allowed, and
// StartAssistantThread fails the test: Slack delivers no assistant events
// to such an app.
func (s *Server) SetAssistant(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assistant = on
}

// StartAssistantThread opens the app's assistant pane for user while they
// view channel context ("" for none), as Slack does: it posts the
// thread's root (subtype assistant_app_thread, by the app's bot user) in
// the DM between user and the app, and returns that DM, the root's
// timestamp and the assistant_thread_started delivery. The person's
// messages in the thread are Posts in the DM with ThreadTS set to the
// root; they carry the assistant_thread field Slack adds.
func (s *Server) StartAssistantThread(tb testing.TB, user, context string) (channel, ts string, env Envelope) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.assistant {
		tb.Fatal("slacktest: the app's Agents & AI Apps feature is off (SetAssistant): Slack sends it no assistant threads")
	}
	channel = "D" + user
	t := s.channelTeam(channel)
	m := &Message{Channel: channel, TS: s.nextTS(), User: t.botUser, Subtype: "assistant_app_thread", Text: "New chat"}
	s.messages = append(s.messages, m)
	at := s.assistantThread(channel, m.TS)
	at.Started, at.User, at.Context = true, user, context
	s.changed()
	return channel, m.TS, s.teamEvent(t, map[string]any{"type": "assistant_thread_started",
		"assistant_thread": s.assistantThreadEvent(at), "event_ts": s.nextTS()})
}

// ChangeAssistantContext returns the assistant_thread_context_changed
// delivery of the assistant thread ts in channel once its person views
// context instead ("" for nothing).
func (s *Server) ChangeAssistantContext(tb testing.TB, channel, ts, context string) Envelope {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.assistants[channel+"/"+ts]
	if at == nil || !at.Started {
		tb.Fatalf("slacktest: %s/%s is no assistant thread", channel, ts)
	}
	at.Context = context
	return s.teamEvent(s.channelTeam(channel), map[string]any{"type": "assistant_thread_context_changed",
		"assistant_thread": s.assistantThreadEvent(at), "event_ts": s.nextTS()})
}

// Assistant returns the thread rooted at ts in channel as the assistant
// pane keeps it, and false if it was neither started there nor given a
// status.
func (s *Server) Assistant(channel, ts string) (AssistantThread, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, found := s.assistants[channel+"/"+ts]
	if !found {
		return AssistantThread{}, false
	}
	c := *at
	c.Statuses = append([]string(nil), at.Statuses...)
	c.Prompts = append([]Prompt(nil), at.Prompts...)
	return c, true
}

// assistantThread returns the record of the thread ts in channel, made on
// first use; s.mu is held.
func (s *Server) assistantThread(channel, ts string) *AssistantThread {
	if s.assistants == nil {
		s.assistants = map[string]*AssistantThread{}
	}
	key := channel + "/" + ts
	if s.assistants[key] == nil {
		s.assistants[key] = &AssistantThread{Channel: channel, TS: ts}
	}
	return s.assistants[key]
}

// assistantThreadEvent renders at as an assistant event's
// assistant_thread object; s.mu is held.
func (s *Server) assistantThreadEvent(at *AssistantThread) map[string]any {
	context := map[string]any{}
	if at.Context != "" {
		t := s.channelTeam(at.Context)
		context["channel_id"], context["team_id"] = at.Context, t.id
		if t.enterprise != "" {
			context["enterprise_id"] = t.enterprise
		}
	}
	return map[string]any{"user_id": at.User, "channel_id": at.Channel, "thread_ts": at.TS, "context": context}
}

// posted clears the loading status of the thread ts in channel, as a
// message the app posts there does; s.mu is held.
func (s *Server) posted(channel, ts string) {
	if at := s.assistants[channel+"/"+ts]; at != nil && ts != "" {
		at.Status = ""
	}
}

// setAssistantStatus serves assistant.threads.setStatus: channel_id,
// thread_ts (a thread of the channel) and status ("" clears it) are
// required; loading_messages, if given, are at most ten. s.mu is held.
func (s *Server) setAssistantStatus(p map[string]string) reply {
	status, hasStatus := p["status"]
	switch {
	case p["channel_id"] == "" || p["thread_ts"] == "" || !hasStatus:
		return failed("invalid_arguments")
	case !s.assistant:
		return failed("not_allowed")
	case s.find(p["channel_id"], p["thread_ts"]) == nil:
		return failed("invalid_thread_ts")
	case p["loading_messages"] != "" && len(list(p["loading_messages"])) > maxLoadingMessages:
		return failed("invalid_arguments")
	}
	at := s.assistantThread(p["channel_id"], p["thread_ts"])
	at.Statuses = append(at.Statuses, status)
	at.Status = status
	return ok(nil)
}

// setSuggestedPrompts serves assistant.threads.setSuggestedPrompts:
// channel_id and thread_ts name a thread started in the assistant pane;
// prompts is a JSON array of one to four objects, each with a title and a
// message; title, the list's, is optional. s.mu is held.
func (s *Server) setSuggestedPrompts(p map[string]string) reply {
	var prompts []Prompt
	switch {
	case p["channel_id"] == "" || p["thread_ts"] == "" || p["prompts"] == "":
		return failed("invalid_arguments")
	case !s.assistant:
		return failed("not_allowed")
	case s.assistants[p["channel_id"]+"/"+p["thread_ts"]] == nil || !s.assistants[p["channel_id"]+"/"+p["thread_ts"]].Started:
		return failed("invalid_thread_ts")
	case json.Unmarshal([]byte(p["prompts"]), &prompts) != nil || len(prompts) == 0 || len(prompts) > MaxSuggestedPrompts:
		return failed("invalid_arguments")
	}
	for _, pr := range prompts {
		if pr.Title == "" || pr.Message == "" || !utf8.ValidString(pr.Title+pr.Message) {
			return failed("invalid_arguments")
		}
	}
	at := s.assistants[p["channel_id"]+"/"+p["thread_ts"]]
	at.PromptsTitle, at.Prompts = p["title"], prompts
	return ok(nil)
}

// list reads a parameter that is an array: JSON, or comma-separated as
// form-encoded clients send it.
func list(v string) []string {
	var out []string
	if json.Unmarshal([]byte(v), &out) == nil {
		return out
	}
	return strings.Split(v, ",")
}
