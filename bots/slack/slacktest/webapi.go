package slacktest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// fault is an answer queued for an upcoming call of a method.
type fault struct {
	retryAfter time.Duration // > 0: HTTP 429
	code       string        // error code
}

// RateLimit makes the next call of method answer HTTP 429 with a
// Retry-After of retryAfter (whole seconds, as Slack sends) and the error
// "ratelimited".
func (s *Server) RateLimit(method string, retryAfter time.Duration) {
	s.faults.Add(method, fault{retryAfter: max(retryAfter, time.Second), code: "ratelimited"})
}

// Fail makes the next call of method answer {"ok": false, "error": code}.
func (s *Server) Fail(method, code string) {
	s.faults.Add(method, fault{code: code})
}

// reply is a Web API answer: its fields besides "ok", or an error code.
type reply struct {
	fields map[string]any
	err    string
}

func ok(fields map[string]any) reply { return reply{fields: fields} }
func failed(code string) reply       { return reply{err: code} }

// webAPI serves /api/{method}.
func (s *Server) webAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	params, perr := readParams(r)
	token := params["token"]
	if h, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		token = h
	}
	delete(params, "token")
	s.intercept(method, params)

	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Params: params, Token: token, At: time.Now(), Status: http.StatusOK}
	var rep reply
	switch {
	case perr != nil:
		rep = failed("invalid_form_data")
	case s.takeFault(method, &call, w):
		s.calls = append(s.calls, call)
		s.changed()
		return
	case method == "oauth.v2.access":
		rep = s.oauthAccess(r, params)
	default:
		var caller team
		caller, rep = s.authorize(method, token)
		if rep.err == "" {
			rep = s.method(caller, token, method, params)
		}
	}
	call.Error = rep.err
	s.calls = append(s.calls, call)
	s.changed()
	body := map[string]any{"ok": rep.err == ""}
	if rep.err != "" {
		body["error"] = rep.err
	}
	for k, v := range rep.fields {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

// Intercept makes fn run at each Web API call ("upload" for the upload
// URL) before the fake acts on it, outside the fake's lock: a test can kill
// the app there to crash it between the steps of an upload. nil removes it.
func (s *Server) Intercept(fn func(method string, params map[string]string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interceptor = fn
}

func (s *Server) intercept(method string, params map[string]string) {
	s.mu.Lock()
	fn := s.interceptor
	s.mu.Unlock()
	if fn != nil {
		fn(method, params)
	}
}

// takeFault answers with the next queued fault of method, if any; s.mu is
// held.
func (s *Server) takeFault(method string, call *Call, w http.ResponseWriter) bool {
	f, ok := s.faults.Take(method)
	if !ok {
		return false
	}
	call.Error = f.code
	if f.retryAfter > 0 {
		call.Status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
	}
	writeJSON(w, call.Status, map[string]any{"ok": false, "error": f.code})
	return true
}

// authorize checks the token a method needs, and returns the workspace it
// belongs to: the app-level token for apps.connections.open, a bot token
// for everything else; s.mu is held.
func (s *Server) authorize(method, token string) (team, reply) {
	if token == "" {
		return team{}, failed("not_authed")
	}
	if method == "apps.connections.open" {
		if token != s.AppToken {
			return team{}, failed("invalid_auth")
		}
		return team{}, reply{}
	}
	t, found := s.tokenTeam(token)
	if !found {
		return team{}, failed("invalid_auth")
	}
	return t, reply{}
}

// method runs one Web API method for caller, the workspace of token; a
// channel the call names must be one token serves. s.mu is held.
func (s *Server) method(caller team, token, method string, p map[string]string) reply {
	for _, ch := range []string{p["channel"], p["channel_id"]} {
		if ch != "" && method != "apps.connections.open" && !s.serves(caller, token, ch) {
			return failed("channel_not_found")
		}
	}
	switch method {
	case "auth.test":
		return ok(map[string]any{"url": s.srv.URL + "/", "team": caller.domain, "user": "easel",
			"team_id": caller.id, "user_id": caller.botUser, "bot_id": caller.botID, "is_enterprise_install": false})
	case "apps.connections.open":
		return ok(map[string]any{"url": s.openSocket()})
	case "chat.postMessage":
		return s.postMessage(caller, p)
	case "chat.update":
		return s.update(caller, p)
	case "chat.delete":
		return s.delete(caller, p)
	case "chat.postEphemeral":
		return s.postEphemeral(p)
	case "reactions.add", "reactions.remove":
		return s.react(method == "reactions.add", p)
	case "users.info":
		name, found := s.users[p["user"]]
		if !found {
			return failed("user_not_found")
		}
		return ok(map[string]any{"user": map[string]any{"id": p["user"], "team_id": caller.id, "name": name,
			"real_name": name, "profile": map[string]any{"display_name": name, "real_name": name}}})
	case "conversations.replies":
		return s.replies(p)
	case "files.getUploadURLExternal":
		return s.getUploadURL(p)
	case "files.completeUploadExternal":
		return s.completeUpload(caller, p)
	case "files.delete":
		return s.deleteFile(caller, p)
	case "assistant.threads.setStatus":
		return s.setAssistantStatus(p)
	case "assistant.threads.setSuggestedPrompts":
		return s.setSuggestedPrompts(p)
	}
	return failed("unknown_method")
}

func (s *Server) postMessage(caller team, p map[string]string) reply {
	channel := p["channel"]
	if channel == "" {
		return failed("channel_not_found")
	}
	if p["text"] == "" && p["blocks"] == "" {
		return failed("no_text")
	}
	if p["blocks"] != "" && !validBlocks(p["blocks"]) {
		return failed("invalid_blocks")
	}
	if ts := p["thread_ts"]; ts != "" && s.find(channel, ts) == nil {
		return failed("thread_not_found")
	}
	m := &Message{Channel: channel, TS: s.nextTS(), ThreadTS: p["thread_ts"], User: caller.botUser, BotID: caller.botID,
		Text: p["text"], Blocks: json.RawMessage(p["blocks"])}
	s.messages = append(s.messages, m)
	s.posted(channel, m.ThreadTS)
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": s.wire(m)})
}

func (s *Server) update(caller team, p map[string]string) reply {
	m := s.find(p["channel"], p["ts"])
	switch {
	case m == nil || m.Deleted:
		return failed("message_not_found")
	case m.BotID != caller.botID:
		return failed("cant_update_message")
	case p["text"] == "" && p["blocks"] == "":
		return failed("no_text")
	case p["blocks"] != "" && !validBlocks(p["blocks"]):
		return failed("invalid_blocks")
	}
	m.Text, m.Edits = p["text"], m.Edits+1
	if p["blocks"] != "" {
		m.Blocks = json.RawMessage(p["blocks"])
	}
	return ok(map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text, "message": s.wire(m)})
}

func (s *Server) delete(caller team, p map[string]string) reply {
	m := s.find(p["channel"], p["ts"])
	switch {
	case m == nil || m.Deleted:
		return failed("message_not_found")
	case m.BotID != caller.botID:
		return failed("cant_delete_message")
	}
	m.Deleted = true
	return ok(map[string]any{"channel": m.Channel, "ts": m.TS})
}

func (s *Server) postEphemeral(p map[string]string) reply {
	switch {
	case p["channel"] == "":
		return failed("channel_not_found")
	case p["user"] == "":
		return failed("user_not_in_channel")
	case p["text"] == "" && p["blocks"] == "":
		return failed("no_text")
	}
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: p["channel"], User: p["user"], ThreadTS: p["thread_ts"], Text: p["text"]})
	return ok(map[string]any{"message_ts": s.nextTS()})
}

func (s *Server) react(add bool, p map[string]string) reply {
	if p["name"] == "" {
		return failed("invalid_name")
	}
	m := s.find(p["channel"], p["timestamp"])
	if m == nil || m.Deleted {
		return failed("message_not_found")
	}
	i := slices.Index(m.Reactions, p["name"])
	switch {
	case add && i >= 0:
		return failed("already_reacted")
	case add:
		m.Reactions = append(m.Reactions, p["name"])
	case i < 0:
		return failed("no_reaction")
	default:
		m.Reactions = slices.Delete(m.Reactions, i, i+1)
	}
	return ok(nil)
}

// wire renders a message as the Web API returns it; s.mu is held.
func (s *Server) wire(m *Message) map[string]any {
	w := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": m.User}
	if m.Subtype != "" {
		w["subtype"] = m.Subtype
	}
	if m.BotID != "" {
		w["bot_id"], w["app_id"] = m.BotID, s.AppID
	}
	if m.ThreadTS != "" {
		w["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		w["blocks"] = m.Blocks
	}
	if len(m.Files) > 0 {
		files := make([]map[string]any, len(m.Files))
		for i, id := range m.Files {
			files[i] = map[string]any{"id": id}
			if u := s.upload(id); u != nil {
				files[i]["name"], files[i]["title"] = u.Filename, u.Title
			}
		}
		w["files"] = files
	}
	return w
}

// replies serves conversations.replies: the thread's root and replies,
// oldest first, not deleted, between oldest and latest (inclusive only with
// inclusive=true), limit per page (default 100, at most 1000) with an
// opaque next_cursor; s.mu is held.
func (s *Server) replies(p map[string]string) reply {
	root := s.find(p["channel"], p["ts"])
	if root == nil || root.Deleted {
		return failed("thread_not_found")
	}
	limit := 100
	if v, err := strconv.Atoi(p["limit"]); err == nil && v > 0 {
		limit = min(v, 1000)
	}
	skip, _ := strconv.Atoi(p["cursor"])
	inclusive := p["inclusive"] == "true" || p["inclusive"] == "1"
	after := func(ts, bound string) bool { return cmpTS(ts, bound) > 0 || inclusive && ts == bound }
	var page []map[string]any
	seen := 0
	for _, m := range s.messages {
		if m.Channel != root.Channel || m.Deleted || (m != root && m.ThreadTS != root.TS) {
			continue
		}
		if o := p["oldest"]; o != "" && !after(m.TS, o) {
			continue
		}
		if l := p["latest"]; l != "" && !after(l, m.TS) {
			continue
		}
		if seen++; seen <= skip {
			continue
		}
		if len(page) == limit {
			return ok(map[string]any{"messages": page, "has_more": true,
				"response_metadata": map[string]any{"next_cursor": strconv.Itoa(skip + limit)}})
		}
		page = append(page, s.wire(m))
	}
	return ok(map[string]any{"messages": page, "has_more": false})
}

// cmpTS orders Slack timestamps ("seconds.micros") numerically.
func cmpTS(a, b string) int {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if c := cmp.Compare(len(as), len(bs)); c != 0 {
		return c
	}
	if c := strings.Compare(as, bs); c != 0 {
		return c
	}
	return strings.Compare(af, bf)
}

// validBlocks reports whether s is a JSON array of objects with a type,
// whose static_select menus are as Block Kit requires: an action_id, a
// plain_text placeholder of at most 150 characters, and 1 to 100 options,
// each with plain_text text of at most 75 characters and a value of at
// most 150; and whose buttons are too: an action_id, plain_text text of
// at most 75 characters, a value of at most 2000 and a style of primary,
// danger or none.
func validBlocks(s string) bool {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			Type        string          `json:"type"`
			ActionID    string          `json:"action_id"`
			Text        json.RawMessage `json:"text"` // an object in a button, a string in a context block
			Value       string          `json:"value"`
			Style       string          `json:"style"`
			Confirm     *confirm        `json:"confirm"`
			Placeholder *text           `json:"placeholder"`
			Options     []struct {
				Text  *text  `json:"text"`
				Value string `json:"value"`
			} `json:"options"`
		} `json:"elements"`
	}
	if json.Unmarshal([]byte(s), &blocks) != nil {
		return false
	}
	for _, b := range blocks {
		if b.Type == "" || len(b.Elements) > 25 {
			return false
		}
		ids := map[string]bool{}
		for _, e := range b.Elements {
			if e.ActionID != "" && ids[e.ActionID] { // action_ids are unique within a block
				return false
			}
			ids[e.ActionID] = true
			if e.Type == "button" {
				var label text
				if json.Unmarshal(e.Text, &label) != nil || !validButton(e.ActionID, label.Type, label.Text, e.Value, e.Style) ||
					e.Confirm != nil && !e.Confirm.valid() {
					return false
				}
			}
			if e.Type != "static_select" {
				continue
			}
			if e.ActionID == "" || e.Placeholder == nil || e.Placeholder.Type != "plain_text" || utf8.RuneCountInString(e.Placeholder.Text) > 150 ||
				len(e.Options) < 1 || len(e.Options) > 100 {
				return false
			}
			for _, o := range e.Options {
				if o.Text == nil || o.Text.Type != "plain_text" || utf8.RuneCountInString(o.Text.Text) > 75 || o.Value == "" || len(o.Value) > 150 {
					return false
				}
			}
		}
	}
	return true
}

// confirm is a confirmation dialog object, as a button's confirm.
type confirm struct {
	Title   *textObject `json:"title"`
	Text    *textObject `json:"text"`
	Confirm *textObject `json:"confirm"`
	Deny    *textObject `json:"deny"`
	Style   string      `json:"style"`
}

// textObject is a Block Kit text object.
type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// valid reports whether c is as Block Kit requires: a plain_text title of
// at most 100 characters, a text of at most 300, plain_text confirm and
// deny labels of at most 30, and a style of primary, danger or none.
func (c *confirm) valid() bool {
	plain := func(t *textObject, most int) bool {
		return t != nil && t.Type == "plain_text" && t.Text != "" && utf8.RuneCountInString(t.Text) <= most
	}
	return plain(c.Title, 100) && c.Text != nil && (c.Text.Type == "plain_text" || c.Text.Type == "mrkdwn") &&
		c.Text.Text != "" && utf8.RuneCountInString(c.Text.Text) <= 300 && plain(c.Confirm, 30) &&
		(c.Deny == nil || plain(c.Deny, 30)) && (c.Style == "" || c.Style == "primary" || c.Style == "danger")
}

// validButton reports whether a button's fields are as Block Kit requires.
func validButton(actionID, labelType, label, value, style string) bool {
	return actionID != "" && labelType == "plain_text" && label != "" &&
		utf8.RuneCountInString(label) <= 75 && len(value) <= 2000 &&
		(style == "" || style == "primary" || style == "danger")
}

// readParams returns a request's parameters: the query and a form body, or
// a JSON object body's fields.
func readParams(r *http.Request) (map[string]string, error) {
	params := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return params, fmt.Errorf("slacktest: JSON body: %w", err)
		}
		for k, v := range body {
			if s, isString := v.(string); isString {
				params[k] = s
			} else {
				b, _ := json.Marshal(v)
				params[k] = string(b)
			}
		}
		for k, v := range r.URL.Query() {
			params[k] = v[0]
		}
		return params, nil
	}
	if err := r.ParseForm(); err != nil {
		return params, err
	}
	for k, v := range r.Form {
		params[k] = v[0]
	}
	return params, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
