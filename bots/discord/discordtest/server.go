// Package discordtest is a fake of Discord for tests, served on loopback and
// speaking the real wire protocols: the REST API (routes and payloads as in
// Discord's OpenAPI description), the CDN that serves attachments, and the
// gateway websocket (HELLO, IDENTIFY, READY, heartbeats, dispatches with
// sequence numbers, RESUME with replay of missed dispatches), in as many
// shards as the bot asks for: each guild's events go to shard
// (guild_id >> 22) % count, and the gateway refuses, as Discord does, an
// IDENTIFY too soon in its max_concurrency bucket, and one for a shard
// another live connection holds.
//
// The fake holds one application whose bot user is Server.Bot, a guild with a
// #general text channel (more channels and categories can be added), and
// users who act through the helpers in events.go: they post messages,
// mention the bot, reply, send DMs, run slash commands (with subcommand
// groups), type in autocomplete options and press buttons, each of which
// becomes the gateway dispatch Discord would send. Everything the bot does
// over REST is recorded as a Call and applied to the fake's state
// (messages, threads, reactions, interaction responses, autocomplete
// choices, whom a message pinged), so tests can wait for and inspect the
// outcome.
//
// Like Discord it checks what it is sent: the bot token, interaction deadlines
// (3 s to acknowledge) and tokens (which can be expired to simulate their
// 15-minute life), message limits (2,000 characters, component rules, the
// per-guild upload limit, allowed_mentions), thread and command payloads
// (option nesting, choices, autocomplete, lengths), and autocomplete answers
// (callback type 8 only, at most 25 choices). Faults can be
// injected: 429 responses with retry_after and X-RateLimit headers, and
// server-initiated gateway disconnects.
//
//	srv := discordtest.NewServer(t)
//	bot, _ := discord.New(discord.Config{Token: srv.Token, APIURL: srv.URL()}, engine, db, nil)
//	go bot.Run(ctx)
//	srv.WaitReady(t)
//	srv.Mention(srv.Alice, srv.Channel, "a red fox")
package discordtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/internal/wirefake"
)

// Channel types, as in Discord's ChannelTypes.
const (
	ChannelText         = 0
	ChannelDM           = 1
	ChannelCategory     = 4
	ChannelPublicThread = 11
)

// Server is a fake Discord. Set its exported fields before the bot
// connects; its methods are safe for concurrent use.
type Server struct {
	// Token is the bot token accepted on REST calls and in IDENTIFY,
	// without the "Bot " prefix.
	Token string
	// MessageContentAllowed says the application may use the privileged
	// Message Content intent. When false, an IDENTIFY asking for it is
	// closed with 4014 "Disallowed intent(s)", as Discord does.
	MessageContentAllowed bool
	// HeartbeatInterval is sent in HELLO. Default 41.25 s.
	HeartbeatInterval time.Duration
	// WaitTimeout bounds Wait. Default 10 s.
	WaitTimeout time.Duration
	// Shards is the number of shards GET /gateway/bot recommends.
	// Default 1. The gateway serves any count a bot asks for, routing
	// each guild's events to shard (guild_id >> 22) % count.
	Shards int
	// MaxConcurrency is GET /gateway/bot's max_concurrency: the gateway
	// takes one IDENTIFY per 5 s in each bucket (shard % max_concurrency)
	// and closes the connection of one too soon (4008). Default 1.
	MaxConcurrency int
	// UnlimitedIdentifies lifts that limit, for tests of reconnects that
	// are not about pacing.
	UnlimitedIdentifies bool

	// Bot is the application's bot user; its ID is also the application id.
	Bot User
	// Alice and Bob are two ordinary users.
	Alice, Bob User
	// Guild is the id of the default guild, and Channel the id of its
	// #general text channel.
	Guild, Channel string

	srv  *httptest.Server
	gw   gateway
	once sync.Once

	mu           sync.Mutex
	changes      wirefake.Changes
	lastID       uint64
	seq          uint64 // low bits of backdated ids
	users        map[string]User
	guilds       map[string]*guild
	channels     map[string]*Channel
	messages     map[string]*Message
	order        []string // message ids, oldest first
	interactions map[string]*Interaction
	tokens       map[string]*Interaction // by interaction token
	commands     []Command
	calls        []Call
	limits       []rateLimit
	files        map[string]*Attachment // CDN path → attachment
	expired      bool                   // interaction tokens no longer valid
	remaining    int                    // IDENTIFYs left of the day's 1000
	after        func(Call)             // see AfterCall
}

// guild is a guild and its boost level, which sets its upload limit.
type guild struct {
	id, name    string
	premiumTier int
}

// User is a Discord user as the fake knows it.
type User struct {
	ID       string
	Username string
	Bot      bool
	// Roles are role ids the user holds in every guild, and Admin gives
	// the Administrator permission; both appear in interactions' member
	// objects.
	Roles []string
	Admin bool
}

// Channel is a text channel, DM channel or thread.
type Channel struct {
	ID, GuildID, Name string
	Type              int
	ParentID          string // threads: the channel they belong to; text channels: their category, if any
	OwnerID           string // threads: who started them
	Recipient         string // DMs: the user id at the other end
}

// NewServer starts a fake on loopback with a bot, two users and a guild, and
// closes it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		Token:        "fake-bot-token",
		users:        map[string]User{},
		guilds:       map[string]*guild{},
		channels:     map[string]*Channel{},
		messages:     map[string]*Message{},
		interactions: map[string]*Interaction{},
		tokens:       map[string]*Interaction{},
		files:        map[string]*Attachment{},
		remaining:    1000,
	}
	s.gw.s = s
	s.Bot = s.AddUser("Easel")
	s.Bot.Bot = true
	s.users[s.Bot.ID] = s.Bot
	s.Alice, s.Bob = s.AddUser("alice"), s.AddUser("bob")
	s.Guild, s.Channel = s.AddGuild("Easel Test", 0)

	s.srv = httptest.NewServer(s.routes())
	t.Cleanup(s.Close)
	return s
}

// URL returns the REST API root, ending in "/api/", as config's api_url.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Close stops the server and drops the gateway connection. It is called
// automatically when the test ends.
func (s *Server) Close() {
	s.once.Do(func() {
		s.gw.drop(4000)
		s.srv.Close()
	})
}

// AddUser adds an ordinary user.
func (s *Server) AddUser(name string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := User{ID: s.newID(), Username: name}
	s.users[u.ID] = u
	return u
}

// AddGuild adds a guild with a #general text channel and returns both ids.
// premiumTier (0–3) sets the upload limit: 10 MiB, 50 MiB at tier 2, 100 MiB
// at tier 3. Guilds added after the bot connected reach it on its next
// IDENTIFY.
func (s *Server) AddGuild(name string, premiumTier int) (guildID, channelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &guild{id: s.newID(), name: name, premiumTier: premiumTier}
	s.guilds[g.id] = g
	c := &Channel{ID: s.newID(), GuildID: g.id, Name: "general", Type: ChannelText}
	s.channels[c.ID] = c
	return g.id, c.ID
}

// AddCategory adds a category (a channel of type 4, which holds other
// channels and takes no messages) to a guild and returns its id. Once the
// bot is connected it hears of it in a CHANNEL_CREATE.
func (s *Server) AddCategory(guildID, name string) string {
	return s.addChannel(&Channel{GuildID: guildID, Name: name, Type: ChannelCategory})
}

// AddChannel adds a text channel to a guild, in category (or in none, for
// "") and returns its id. Once the bot is connected it hears of it in a
// CHANNEL_CREATE.
func (s *Server) AddChannel(guildID, name, category string) string {
	return s.addChannel(&Channel{GuildID: guildID, Name: name, Type: ChannelText, ParentID: category})
}

// addChannel stores c under a new id and dispatches its CHANNEL_CREATE.
// It panics for an unknown guild or category, as a test's mistake.
func (s *Server) addChannel(c *Channel) string {
	s.mu.Lock()
	if s.guilds[c.GuildID] == nil {
		s.mu.Unlock()
		panic(fmt.Sprintf("discordtest: no guild %q", c.GuildID))
	}
	if p := s.channels[c.ParentID]; c.ParentID != "" && (p == nil || p.Type != ChannelCategory || p.GuildID != c.GuildID) {
		s.mu.Unlock()
		panic(fmt.Sprintf("discordtest: no category %q in guild %s", c.ParentID, c.GuildID))
	}
	c.ID = s.newID()
	s.channels[c.ID] = c
	e := event{t: "CHANNEL_CREATE", d: s.wireChannel(c), intent: intentGuilds}
	s.notify()
	s.mu.Unlock()
	s.gw.dispatch(e)
	return c.ID
}

// DMChannel returns the id of the DM channel between u and the bot,
// creating it on first use.
func (s *Server) DMChannel(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if c.Type == ChannelDM && c.Recipient == u.ID {
			return c.ID
		}
	}
	c := &Channel{ID: s.newID(), Type: ChannelDM, Recipient: u.ID}
	s.channels[c.ID] = c
	return c.ID
}

// GetChannel returns a channel or thread by id.
func (s *Server) GetChannel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	return *c, true
}

// Threads returns the threads of a channel, oldest first.
func (s *Server) Threads(parentID string) []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Channel
	for _, c := range s.channels {
		if c.ParentID == parentID {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Channel) int { return cmpID(a.ID, b.ID) })
	return out
}

// Messages returns the messages of a channel that have not been deleted,
// oldest first. Ephemeral messages are included.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, id := range s.order {
		if m := s.messages[id]; m.ChannelID == channelID && !m.Deleted {
			out = append(out, m.snapshot())
		}
	}
	return out
}

// GetMessage returns a message by id, deleted or not.
func (s *Server) GetMessage(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.snapshot(), true
}

// Calls returns the REST and CDN requests received on route, oldest first;
// route is a method and path pattern as in Discord's API description, such
// as "POST /channels/{channel_id}/messages" (the /api/vN prefix left out),
// or "" for all. CDN downloads have the route "GET /attachments/…".
func (s *Server) Calls(route string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if route == "" || c.Route == route {
			out = append(out, c)
		}
	}
	return out
}

// Commands returns the application commands registered in a guild, or
// globally for guildID "".
func (s *Server) Commands(guildID string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Command
	for _, c := range s.commands {
		if c.GuildID == guildID {
			out = append(out, c)
		}
	}
	return out
}

// GetInteraction returns what became of an interaction sent by Command or Click.
func (s *Server) GetInteraction(id string) Interaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.interactions[id]; ok {
		return i.snapshot()
	}
	return Interaction{}
}

// ExpireTokens makes every interaction token issued so far invalid, as
// Discord does 15 minutes after the interaction: webhook calls with them
// get 401 "Invalid Webhook Token", and callbacks 404 "Unknown
// interaction".
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
}

// RateLimit makes the next request on route (see Calls) answer 429 with
// retry_after and X-RateLimit headers, as Discord does when a bucket is
// exhausted; global sets the global limit flag and header.
func (s *Server) RateLimit(route string, retryAfter time.Duration, global bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, rateLimit{route: route, retryAfter: retryAfter, global: global})
}

// AfterCall makes fn run after the fake has acted on each REST call, and
// before it answers, outside its lock: a test can kill the bot there, say
// once an interaction is acknowledged but before the bot has heard so.
// nil removes it.
func (s *Server) AfterCall(fn func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after = fn
}

// Wait waits until cond returns true, checking it after every change to the
// fake's state and every 10 ms (for conditions on other state), and fails
// the test if that takes longer than WaitTimeout.
func (s *Server) Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timeout := s.WaitTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	s.changes.Wait(t, "discordtest", what, timeout, 10*time.Millisecond, cond)
}

// notify wakes Wait.
func (s *Server) notify() { s.changes.Notify() }

// discordEpoch is the first millisecond of 2015, where snowflake time
// starts.
const discordEpoch = 1420070400000

// newID returns a fresh snowflake, whose top bits are the time now as on
// Discord, and which is greater than every id before it; s.mu must be
// held. Messages and channels share the sequence, so a thread started from
// a message can take its id.
func (s *Server) newID() string {
	id := uint64(time.Now().UnixMilli()-discordEpoch) << 22
	s.lastID = max(id, s.lastID+1)
	return strconv.FormatUint(s.lastID, 10)
}

// idAt returns a fresh snowflake of time t, which may be in the past; s.mu
// must be held.
func (s *Server) idAt(t time.Time) string {
	s.seq = (s.seq + 1) % (1 << 22)
	return strconv.FormatUint(uint64(t.UnixMilli()-discordEpoch)<<22|s.seq, 10)
}

// lastMessage returns the id of the newest message of a channel, or "";
// s.mu must be held.
func (s *Server) lastMessage(channelID string) string {
	last := ""
	for _, m := range s.messages {
		if m.ChannelID == channelID && !m.Ephemeral() && (last == "" || cmpID(m.ID, last) > 0) {
			last = m.ID
		}
	}
	return last
}

// cmpID orders snowflakes numerically.
func cmpID(a, b string) int {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// uploadLimit returns the most bytes of files a message in channel may
// carry; s.mu must be held.
func (s *Server) uploadLimit(c *Channel) int64 {
	if g := s.guilds[c.GuildID]; g != nil {
		switch g.premiumTier {
		case 2:
			return 50 << 20
		case 3:
			return 100 << 20
		}
	}
	return 10 << 20
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.channelRoutes(mux)
	s.interactionRoutes(mux)
	mux.HandleFunc("GET /attachments/{channel_id}/{attachment_id}/{filename}", s.serveCDN)
	mux.HandleFunc("/ws/", s.gw.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 0, fmt.Sprintf("404: Not Found (%s %s)", r.Method, r.URL.Path))
	})
	return mux
}
