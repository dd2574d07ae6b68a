package discordtest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// channelRoutes registers the gateway, user, channel, message, thread,
// typing and reaction routes.
func (s *Server) channelRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /gateway", false, s.getGateway)
	s.handle(mux, "GET /gateway/bot", true, s.getGatewayBot)
	s.handle(mux, "GET /users/@me", true, func(*Call) result { return ok(http.StatusOK, wireUser(s.Bot)) })
	s.handle(mux, "GET /guilds/{guild_id}", true, s.getGuild)
	s.handle(mux, "GET /guilds/{guild_id}/members/{user_id}", true, s.getMember)
	s.handle(mux, "GET /channels/{channel_id}", true, s.getChannel)
	s.handle(mux, "GET /channels/{channel_id}/messages", true, s.listMessages)
	s.handle(mux, "POST /channels/{channel_id}/messages", true, s.createMessage)
	s.handle(mux, "GET /channels/{channel_id}/messages/{message_id}", true, s.getMessage)
	s.handle(mux, "PATCH /channels/{channel_id}/messages/{message_id}", true, s.editMessage)
	s.handle(mux, "DELETE /channels/{channel_id}/messages/{message_id}", true, s.deleteMessage)
	s.handle(mux, "POST /channels/{channel_id}/messages/{message_id}/threads", true, s.threadFromMessage)
	s.handle(mux, "POST /channels/{channel_id}/threads", true, s.threadWithoutMessage)
	s.handle(mux, "POST /channels/{channel_id}/typing", true, s.typing)
	s.handle(mux, "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me", true, s.react)
}

func (s *Server) getGateway(*Call) result {
	return ok(http.StatusOK, map[string]any{"url": s.gatewayURL()})
}

// getGatewayBot is GET /gateway/bot: the gateway URL, the recommended
// shards and the session start limit, whose remaining count goes down
// with every IDENTIFY.
func (s *Server) getGatewayBot(*Call) result {
	return ok(http.StatusOK, map[string]any{"url": s.gatewayURL(), "shards": max(s.Shards, 1),
		"session_start_limit": map[string]any{"total": 1000, "remaining": s.remaining, "reset_after": 86400000,
			"max_concurrency": max(s.MaxConcurrency, 1)}})
}

// gatewayURL is where the fake's gateway listens, like wss://gateway.discord.gg.
func (s *Server) gatewayURL() string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"
}

func (s *Server) getGuild(c *Call) result {
	g := s.guilds[c.Params["guild_id"]]
	if g == nil {
		return fail(errorf(http.StatusNotFound, 10004, "Unknown Guild"))
	}
	return ok(http.StatusOK, s.wireGuild(g))
}

// getMember is GET /guilds/{guild_id}/members/{user_id}: every user of the
// fake is a member of every guild.
func (s *Server) getMember(c *Call) result {
	if s.guilds[c.Params["guild_id"]] == nil {
		return fail(errorf(http.StatusNotFound, 10004, "Unknown Guild"))
	}
	u, found := s.users[c.Params["user_id"]]
	if !found {
		return fail(errorf(http.StatusNotFound, 10007, "Unknown Member"))
	}
	m := wireMember(u)
	delete(m, "permissions") // only interactions carry them
	return ok(http.StatusOK, m)
}

// wireGuild returns g as the guild object of GUILD_CREATE; s.mu must be held.
func (s *Server) wireGuild(g *guild) map[string]any {
	channels, threads := []any{}, []any{}
	for _, c := range s.channels {
		switch {
		case c.GuildID != g.id:
		case c.Type == ChannelPublicThread:
			threads = append(threads, s.wireChannel(c))
		default:
			channels = append(channels, s.wireChannel(c))
		}
	}
	return map[string]any{"id": g.id, "name": g.name, "premium_tier": g.premiumTier, "owner_id": s.Alice.ID,
		"channels": channels, "threads": threads, "members": []any{}, "roles": []any{}, "emojis": []any{},
		"unavailable": false, "member_count": len(s.users)}
}

// channel returns the channel named by the call's channel_id, or a 404.
func (s *Server) channel(c *Call) (*Channel, *apiError) {
	ch := s.channels[c.Params["channel_id"]]
	if ch == nil {
		return nil, errorf(http.StatusNotFound, 10003, "Unknown Channel")
	}
	return ch, nil
}

// message returns the live message named by the call's channel_id and
// message_id, or a 404.
func (s *Server) message(c *Call) (*Channel, *Message, *apiError) {
	ch, err := s.channel(c)
	if err != nil {
		return nil, nil, err
	}
	m := s.messages[c.Params["message_id"]]
	if m == nil || m.Deleted || m.ChannelID != ch.ID || m.Ephemeral() {
		return nil, nil, errorf(http.StatusNotFound, 10008, "Unknown Message")
	}
	return ch, m, nil
}

func (s *Server) getChannel(c *Call) result {
	ch, err := s.channel(c)
	if err != nil {
		return fail(err)
	}
	return ok(http.StatusOK, s.wireChannel(ch))
}

func (s *Server) getMessage(c *Call) result {
	_, m, err := s.message(c)
	if err != nil {
		return fail(err)
	}
	return ok(http.StatusOK, s.wire(m, true))
}

// listMessages is GET /channels/{channel_id}/messages: the newest messages
// first, at most limit (default 50, at most 100), before a message id if
// given.
func (s *Server) listMessages(c *Call) result {
	ch, err := s.channel(c)
	if err != nil {
		return fail(err)
	}
	limit := 50
	if v := c.Query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fail(invalidForm("limit", "Value must be between 1 and 100."))
		}
		limit = n
	}
	before := c.Query.Get("before")
	out := []any{}
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		m := s.messages[s.order[i]]
		if m.ChannelID == ch.ID && !m.Deleted && !m.Ephemeral() && (before == "" || cmpID(m.ID, before) < 0) {
			out = append(out, s.wire(m, true))
		}
	}
	return ok(http.StatusOK, out)
}

// createMessage is POST /channels/{channel_id}/messages, JSON or multipart.
func (s *Server) createMessage(c *Call) result {
	ch, err := s.channel(c)
	if err != nil {
		return fail(err)
	}
	if ch.Type == ChannelCategory {
		return fail(errorf(http.StatusBadRequest, 50008, "Cannot send messages in a non-text channel"))
	}
	p, err := decodePayload(c.Body)
	if err == nil {
		err = checkMessage(p, c.Files, true, s.uploadLimit(ch), 1<<2|1<<12)
	}
	if err != nil {
		return fail(err)
	}
	m := &Message{ID: s.newID(), ChannelID: ch.ID, GuildID: ch.GuildID, Author: s.Bot, Type: TypeDefault, Flags: p.Flags}
	if ref := p.MessageReference; ref != nil {
		target := s.messages[ref.MessageID]
		switch {
		case target != nil && !target.Deleted && target.ChannelID == ch.ID && (ref.ChannelID == "" || ref.ChannelID == ch.ID):
			m.Type, m.Reference = TypeReply, ref.MessageID
		case ref.FailIfNotExists == nil || *ref.FailIfNotExists:
			return fail(invalidForm("message_reference", "Unknown message"))
		}
	}
	s.apply(m, p, c.Files)
	m.Edits = 0
	s.add(m)
	return ok(http.StatusOK, s.wire(m, true), s.messageEvent(m)...)
}

func (s *Server) editMessage(c *Call) result {
	ch, m, err := s.message(c)
	if err != nil {
		return fail(err)
	}
	if m.Author.ID != s.Bot.ID {
		return fail(errorf(http.StatusForbidden, 50005, "Cannot edit a message authored by another user"))
	}
	p, err := decodePayload(c.Body)
	if err == nil {
		err = checkMessage(p, c.Files, false, s.uploadLimit(ch), 1<<2)
	}
	if err != nil {
		return fail(err)
	}
	s.apply(m, p, c.Files)
	return ok(http.StatusOK, s.wire(m, true))
}

func (s *Server) deleteMessage(c *Call) result {
	_, m, err := s.message(c)
	if err != nil {
		return fail(err)
	}
	if m.Author.ID != s.Bot.ID {
		return fail(errorf(http.StatusForbidden, 50013, "Missing Permissions"))
	}
	m.Deleted = true
	return ok(http.StatusNoContent, nil)
}

// threadFromMessage is POST /channels/{channel_id}/messages/{message_id}/threads
// (CreateTextThreadWithMessageRequest). The thread takes the message's id.
func (s *Server) threadFromMessage(c *Call) result {
	ch, m, err := s.message(c)
	if err != nil {
		return fail(err)
	}
	if ch.Type != ChannelText {
		return fail(errorf(http.StatusBadRequest, 50024, "Cannot execute action on this channel type"))
	}
	if m.Thread != "" {
		return fail(errorf(http.StatusBadRequest, 160004, "A thread has already been created for this message"))
	}
	name, err := threadName(c.Body)
	if err != nil {
		return fail(err)
	}
	t := &Channel{ID: m.ID, GuildID: ch.GuildID, Name: name, Type: ChannelPublicThread, ParentID: ch.ID, OwnerID: s.Bot.ID}
	s.channels[t.ID] = t
	m.Thread = t.ID
	return s.threadCreated(t)
}

// threadWithoutMessage is POST /channels/{channel_id}/threads
// (CreateTextThreadWithoutMessageRequest), for public threads.
func (s *Server) threadWithoutMessage(c *Call) result {
	ch, err := s.channel(c)
	if err != nil {
		return fail(err)
	}
	if ch.Type != ChannelText {
		return fail(errorf(http.StatusBadRequest, 50024, "Cannot execute action on this channel type"))
	}
	name, err := threadName(c.Body)
	if err != nil {
		return fail(err)
	}
	if typ, _ := c.Body["type"].(float64); typ != 0 && typ != ChannelPublicThread {
		return fail(invalidForm("type", "the fake supports public threads (type 11) only"))
	}
	t := &Channel{ID: s.newID(), GuildID: ch.GuildID, Name: name, Type: ChannelPublicThread, ParentID: ch.ID, OwnerID: s.Bot.ID}
	s.channels[t.ID] = t
	return s.threadCreated(t)
}

func (s *Server) threadCreated(t *Channel) result {
	w := s.wireChannel(t)
	created := map[string]any{"newly_created": true}
	for k, v := range w {
		created[k] = v
	}
	return ok(http.StatusCreated, w, event{t: "THREAD_CREATE", d: created, intent: intentGuilds})
}

// threadName checks the name and auto_archive_duration of a thread request.
func threadName(body map[string]any) (string, *apiError) {
	name, _ := body["name"].(string)
	if n := utf8.RuneCountInString(name); n < 1 || n > maxThreadName {
		return "", invalidForm("name", "Must be between 1 and 100 in length.")
	}
	if d, ok := body["auto_archive_duration"].(float64); ok && !slices.Contains([]float64{60, 1440, 4320, 10080}, d) {
		return "", invalidForm("auto_archive_duration", "Value must be one of {60, 1440, 4320, 10080}.")
	}
	return name, nil
}

func (s *Server) typing(c *Call) result {
	if _, err := s.channel(c); err != nil {
		return fail(err)
	}
	return ok(http.StatusNoContent, nil)
}

func (s *Server) react(c *Call) result {
	_, m, err := s.message(c)
	if err != nil {
		return fail(err)
	}
	emoji := c.Params["emoji_name"]
	if emoji == "" || utf8.RuneCountInString(emoji) > 4 && !strings.Contains(emoji, ":") {
		return fail(errorf(http.StatusBadRequest, 10014, "Unknown Emoji"))
	}
	if !slices.Contains(m.Reactions, emoji) {
		m.Reactions = append(m.Reactions, emoji)
	}
	return ok(http.StatusNoContent, nil)
}

// serveCDN serves attachments as cdn.discordapp.com does, recording each
// download (with its Authorization header, which should be empty: the CDN
// needs no token).
func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.files[r.URL.Path]
	c := Call{Method: r.Method, Path: r.URL.RequestURI(), Route: "GET /attachments/{channel_id}/{attachment_id}/{filename}",
		At: time.Now(), Auth: r.Header.Get("Authorization"), Status: http.StatusOK}
	if a == nil {
		c.Status = http.StatusNotFound
	}
	s.calls = append(s.calls, c)
	s.notify()
	s.mu.Unlock()
	if a == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ContentType)
	_, _ = w.Write(a.Data)
}
