package slacktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SlashCommand returns the delivery of text typed with the slash command
// (Command) by user in channel. Its response_url leads back to the fake.
func (s *Server) SlashCommand(user, channel, text string) Envelope {
	return s.Slash(s.Command, user, channel, text)
}

// Slash returns the delivery of text typed with command, one of the app's
// other slash commands, by user in channel, as SlashCommand does.
func (s *Server) Slash(command, user, channel, text string) Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID("")
	s.responseUsers[id] = user
	t := s.channelTeam(channel)
	fields := map[string]string{
		"token": "verification-token", "team_id": t.id, "team_domain": t.domain,
		"channel_id": channel, "channel_name": "channel-" + strings.ToLower(channel),
		"user_id": user, "user_name": s.nameOf(user), "command": command, "text": text,
		"api_app_id": s.AppID, "is_enterprise_install": "false",
		"response_url": s.srv.URL + "/response/" + id, "trigger_id": id + ".1337.triggerid",
	}
	if t.enterprise != "" {
		fields["enterprise_id"] = t.enterprise
	}
	return Envelope{Type: "slash_commands", Payload: mustJSON(fields)}
}

// Post is a message a person writes.
type Post struct {
	Channel     string
	ChannelType string // "channel" (default; "im" in a D… channel), "group", "mpim" or "im"
	User        string
	Text        string // Slack-formatted: a mention of the bot is "<@BOTUSERID>"
	ThreadTS    string // the thread replied in, "" for a top-level message
	Files       []File // from AddFile
}

// Post stores a person's message and returns its timestamp and the
// deliveries Slack makes for it: a message event, and, when it mentions the
// bot outside a DM, an app_mention event too.
func (s *Server) Post(p Post) (string, []Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ChannelType == "" {
		p.ChannelType = "channel"
		if strings.HasPrefix(p.Channel, "D") {
			p.ChannelType = "im"
		}
	}
	m := &Message{Channel: p.Channel, TS: s.nextTS(), ThreadTS: p.ThreadTS, User: p.User, Text: p.Text}
	for _, f := range p.Files {
		m.Files = append(m.Files, f.ID)
	}
	s.messages = append(s.messages, m)
	s.changed()
	t := s.channelTeam(p.Channel)
	ev := map[string]any{"type": "message", "channel": p.Channel, "user": p.User, "text": p.Text, "ts": m.TS,
		"event_ts": m.TS, "channel_type": p.ChannelType, "team": t.id, "client_msg_id": s.nextID("msg-")}
	if p.ThreadTS != "" {
		ev["thread_ts"] = p.ThreadTS
	}
	if at := s.assistants[p.Channel+"/"+p.ThreadTS]; at != nil && at.Started {
		// A message in a thread of the assistant pane: Slack adds the
		// thread's action token and its root's author, the app.
		ev["assistant_thread"] = map[string]any{"action_token": s.nextID("action-")}
		ev["parent_user_id"] = t.botUser
	}
	if len(p.Files) > 0 {
		ev["subtype"], ev["files"], ev["upload"] = "file_share", p.Files, false
	}
	envs := []Envelope{s.eventCallback(ev)}
	if p.ChannelType != "im" && strings.Contains(p.Text, "<@"+t.botUser+">") {
		mention := map[string]any{"type": "app_mention", "user": p.User, "text": p.Text, "ts": m.TS,
			"channel": p.Channel, "event_ts": m.TS, "team": t.id}
		if p.ThreadTS != "" {
			mention["thread_ts"] = p.ThreadTS
		}
		if len(p.Files) > 0 {
			mention["files"] = p.Files
		}
		envs = append(envs, s.eventCallback(mention))
	}
	return m.TS, envs
}

// Event wraps an inner event (a JSON object with its "type") in an
// event_callback delivery with a fresh event id.
func (s *Server) Event(inner map[string]any) Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventCallback(inner)
}

// eventCallback wraps inner as Slack does, for the workspace of inner's
// channel; s.mu is held.
func (s *Server) eventCallback(inner map[string]any) Envelope {
	channel, _ := inner["channel"].(string)
	return s.teamEvent(s.channelTeam(channel), inner)
}

// teamEvent wraps inner as Slack does for an event of workspace t; s.mu is
// held.
func (s *Server) teamEvent(t team, inner map[string]any) Envelope {
	auth := map[string]any{"team_id": t.id, "user_id": t.botUser, "is_bot": true, "is_enterprise_install": false}
	outer := map[string]any{
		"token": "verification-token", "team_id": t.id, "api_app_id": s.AppID, "event": inner,
		"type": "event_callback", "event_id": s.nextID("Ev"), "event_time": time.Now().Unix(),
		"authed_users": []string{t.botUser}, "event_context": s.nextID("ctx-"),
		"is_ext_shared_channel": false, "authorizations": []map[string]any{auth},
	}
	if t.enterprise != "" {
		outer["enterprise_id"], auth["enterprise_id"] = t.enterprise, t.enterprise
	}
	return Envelope{Type: "events_api", Payload: mustJSON(outer)}
}

// URLVerification returns the challenge Slack sends when a request URL is
// saved.
func URLVerification(challenge string) Envelope {
	return Envelope{Type: "events_api", Payload: mustJSON(map[string]any{
		"token": "verification-token", "challenge": challenge, "type": "url_verification"})}
}

// Click returns the delivery of user pressing the button whose action_id
// is actionID on message ts in channel, built from the message's stored
// blocks as Slack builds block_actions payloads. It fails the test if the
// message has no such button.
func (s *Server) Click(t testing.TB, user, channel, ts, actionID string) Envelope {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.find(channel, ts)
	if m == nil || m.Deleted {
		t.Fatalf("slacktest: no message %s in %s to click", ts, channel)
	}
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string          `json:"type"`
			ActionID string          `json:"action_id"`
			Value    string          `json:"value"`
			Text     json.RawMessage `json:"text"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		for _, e := range b.Elements {
			if b.Type != "actions" || e.Type != "button" || e.ActionID != actionID {
				continue
			}
			id := s.nextID("")
			s.responseUsers[id] = user
			t := s.channelTeam(channel)
			container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": channel, "is_ephemeral": false}
			if m.ThreadTS != "" {
				container["thread_ts"] = m.ThreadTS
			}
			return Envelope{Type: "interactive", Payload: mustJSON(map[string]any{
				"type": "block_actions", "api_app_id": s.AppID, "token": "verification-token",
				"user":      map[string]any{"id": user, "username": s.nameOf(user), "name": s.nameOf(user), "team_id": t.id},
				"team":      map[string]any{"id": t.id, "domain": t.domain, "enterprise_id": t.enterprise},
				"container": container, "trigger_id": id + ".1337.triggerid",
				"channel": map[string]any{"id": channel, "name": "channel-" + strings.ToLower(channel)},
				"message": s.wire(m), "state": map[string]any{"values": map[string]any{}},
				"response_url": s.srv.URL + "/response/" + id, "is_enterprise_install": false,
				"actions": []map[string]any{{"action_id": e.ActionID, "block_id": b.BlockID, "text": e.Text,
					"value": e.Value, "type": "button", "action_ts": s.nextTS()}},
			})}
		}
	}
	t.Fatalf("slacktest: message %s has no button %q", ts, actionID)
	return Envelope{}
}

// Select delivers a block_actions payload for user choosing the option of
// value from the static_select menu actionID of message ts in channel, as
// Slack builds it (the action carries the selected option, with its text,
// and the menu's placeholder). It fails the test if the message has no
// such menu or the menu no such option.
func (s *Server) Select(t testing.TB, user, channel, ts, actionID, value string) Envelope {
	t.Helper()
	return s.selectOption(t, user, channel, ts, actionID, value, false)
}

// SelectForged is Select for a value the menu does not offer: a payload a
// client forged, which Slack would never send.
func (s *Server) SelectForged(t testing.TB, user, channel, ts, actionID, value string) Envelope {
	t.Helper()
	return s.selectOption(t, user, channel, ts, actionID, value, true)
}

func (s *Server) selectOption(t testing.TB, user, channel, ts, actionID, value string, forged bool) Envelope {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.find(channel, ts)
	if m == nil || m.Deleted {
		t.Fatalf("slacktest: no message %s in %s to choose from", ts, channel)
	}
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type        string          `json:"type"`
			ActionID    string          `json:"action_id"`
			Placeholder json.RawMessage `json:"placeholder"`
			Options     []struct {
				Text  json.RawMessage `json:"text"`
				Value string          `json:"value"`
			} `json:"options"`
		} `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	for _, b := range blocks {
		for _, e := range b.Elements {
			if b.Type != "actions" || e.Type != "static_select" || e.ActionID != actionID {
				continue
			}
			var option map[string]any
			for _, o := range e.Options {
				if o.Value == value {
					option = map[string]any{"text": o.Text, "value": o.Value}
				}
			}
			if option == nil {
				if !forged {
					t.Fatalf("slacktest: menu %q of message %s offers no %q", actionID, ts, value)
				}
				option = map[string]any{"text": map[string]any{"type": "plain_text", "text": "forged", "emoji": true}, "value": value}
			}
			id := s.nextID("")
			s.responseUsers[id] = user
			t := s.channelTeam(channel)
			container := map[string]any{"type": "message", "message_ts": m.TS, "channel_id": channel, "is_ephemeral": false}
			if m.ThreadTS != "" {
				container["thread_ts"] = m.ThreadTS
			}
			return Envelope{Type: "interactive", Payload: mustJSON(map[string]any{
				"type": "block_actions", "api_app_id": s.AppID, "token": "verification-token",
				"user":      map[string]any{"id": user, "username": s.nameOf(user), "name": s.nameOf(user), "team_id": t.id},
				"team":      map[string]any{"id": t.id, "domain": t.domain, "enterprise_id": t.enterprise},
				"container": container, "trigger_id": id + ".1337.triggerid",
				"channel": map[string]any{"id": channel, "name": "channel-" + strings.ToLower(channel)},
				"message": s.wire(m), "state": map[string]any{"values": map[string]any{b.BlockID: map[string]any{
					actionID: map[string]any{"type": "static_select", "selected_option": option}}}},
				"response_url": s.srv.URL + "/response/" + id, "is_enterprise_install": false,
				"actions": []map[string]any{{"action_id": e.ActionID, "block_id": b.BlockID, "type": "static_select",
					"selected_option": option, "placeholder": e.Placeholder, "action_ts": s.nextTS()}},
			})}
		}
	}
	t.Fatalf("slacktest: message %s has no menu %q", ts, actionID)
	return Envelope{}
}

// Signing says how PostHTTP signs a request. The zero value signs it
// correctly, now, with the server's SigningSecret.
type Signing struct {
	Secret    string    // sign with this secret instead
	Timestamp time.Time // claim this time instead of now
	Unsigned  bool      // send no signature headers
}

// PostHTTP delivers env as Slack does in http mode, to the request URLs
// under base ("…/slack/events", "…/slack/commands",
// "…/slack/interactivity"), signed as sig says, and returns the status and
// body of the answer.
func (s *Server) PostHTTP(t testing.TB, base string, env Envelope, sig Signing) (int, string) {
	t.Helper()
	req, err := s.HTTPRequest(base, env, sig)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("slacktest: deliver to %s: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// HTTPRequest returns the request by which Slack delivers env in http mode
// to the request URLs under base, signed as sig says, for a caller that
// sends it with its own client.
func (s *Server) HTTPRequest(base string, env Envelope, sig Signing) (*http.Request, error) {
	var path, ctype string
	var body []byte
	switch env.Type {
	case "events_api":
		path, ctype, body = "/slack/events", "application/json", env.Payload
	case "slash_commands":
		var fields map[string]string
		if err := json.Unmarshal(env.Payload, &fields); err != nil {
			return nil, fmt.Errorf("slacktest: command payload: %w", err)
		}
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		path, ctype, body = "/slack/commands", "application/x-www-form-urlencoded", []byte(form.Encode())
	case "interactive":
		path, ctype = "/slack/interactivity", "application/x-www-form-urlencoded"
		body = []byte(url.Values{"payload": {string(env.Payload)}}.Encode())
	default:
		return nil, fmt.Errorf("slacktest: no http delivery for %q", env.Type)
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("slacktest: %w", err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	if env.RetryAttempt > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(env.RetryAttempt))
		req.Header.Set("X-Slack-Retry-Reason", either(env.RetryReason, "http_timeout"))
	}
	if !sig.Unsigned {
		ts := sig.Timestamp
		if ts.IsZero() {
			ts = time.Now()
		}
		stamp := strconv.FormatInt(ts.Unix(), 10)
		req.Header.Set("X-Slack-Request-Timestamp", stamp)
		req.Header.Set("X-Slack-Signature", Sign(either(sig.Secret, s.SigningSecret), stamp, body))
	}
	return req, nil
}

// Sign returns Slack's v0 signature of body sent at timestamp.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// nameOf returns a user's name, or the id; s.mu is held.
func (s *Server) nameOf(user string) string { return either(s.users[user], strings.ToLower(user)) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func either(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
