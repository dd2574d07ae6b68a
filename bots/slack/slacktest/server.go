// Package slacktest is a fake of Slack for tests, served on loopback and
// speaking Slack's real wire protocols:
//
//   - workspaces (the first, with BotToken, and more from AddTeam): each
//     bot token belongs to one workspace (or, installed organization-wide,
//     to one Enterprise Grid organization) and touches only its channels;
//     another's answers channel_not_found, an unknown or revoked token
//     invalid_auth;
//
//   - OAuth v2: the authorize page (GET /oauth/v2/authorize) answers as
//     the person queued with Approve does, redirecting with a code, and
//     oauth.v2.access turns the code, once, with the app's client id and
//     secret, into a bot token of the workspace; Uninstall and
//     RevokeBotToken revoke it and return the event Slack delivers then;
//
//   - the Web API methods a bot uses (auth.test, apps.connections.open,
//     chat.postMessage, chat.update, chat.delete, chat.postEphemeral,
//     reactions.add, reactions.remove, users.info, conversations.replies,
//     files.delete and the three-step upload
//     files.getUploadURLExternal → POST to the upload URL →
//     files.completeUploadExternal), form-encoded or JSON, with the token in
//     the Authorization header or the body, answering with Slack's
//     {"ok": false, "error": …} envelope and HTTP 429 + Retry-After;
//
//   - the Agents & AI Apps feature, off until SetAssistant: threads of the
//     assistant pane, started with their assistant_thread_started delivery
//     (StartAssistantThread) and assistant_thread_context_changed, and
//     assistant.threads.setStatus (a loading status, cleared by the app or
//     by its next message in the thread) and
//     assistant.threads.setSuggestedPrompts;
//
//   - private file downloads that need the bot token (without it, a redirect
//     to a sign-in page, as files.slack.com does), and response URLs;
//
//   - Socket Mode: apps.connections.open returns a ws:// URL on the fake,
//     which says hello, pings, pushes envelopes (events_api,
//     slash_commands, interactive, disconnect) and records each ack with its
//     latency;
//
//   - http mode: the same payloads POSTed to a bot's request URLs with v0
//     signatures.
//
// The fake keeps what a workspace would show: messages and thread replies,
// edits, deletions, reactions, ephemeral messages and uploaded files, so
// tests assert on outcomes rather than on calls. Shapes follow the Web API
// and Events API descriptions (slack-web-openapi-v2.json,
// slack-events-api-async-v1.json) and, for methods newer than those, Slack's
// documentation.
//
//	srv := slacktest.NewServer(t)
//	bot, _ := slack.New(slack.Config{BotToken: srv.BotToken, AppToken: srv.AppToken, APIURL: srv.APIURL()}, …)
//	id := srv.Send(t, srv.SlashCommand("U1", "C1", "a red fox"))
//	srv.WaitAck(t, id)
package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/internal/wirefake"
)

// Server is a fake Slack workspace with one app installed. Its exported
// fields may be changed before the bot connects; its methods are safe for
// concurrent use.
type Server struct {
	BotToken      string // xoxb-…, accepted by the Web API methods
	AppToken      string // xapp-…, accepted by apps.connections.open
	SigningSecret string // signs http-mode deliveries
	TeamID        string
	TeamDomain    string
	AppID         string
	BotUserID     string // the bot's user id, as auth.test reports it
	BotID         string
	Command       string // the slash command, "/imagine"
	// ClientID and ClientSecret are the app's OAuth credentials, checked
	// by the authorize page and oauth.v2.access.
	ClientID     string
	ClientSecret string
	// PingInterval is how often the Socket Mode connection is pinged;
	// slack-go reconnects when no ping comes for 30 s.
	PingInterval time.Duration
	// WaitTimeout bounds WaitFor. Default 20 s.
	WaitTimeout time.Duration

	srv *httptest.Server

	mu          sync.Mutex
	changes     wirefake.Changes
	seq         int
	lastTS      int64 // microseconds of the last message timestamp
	interceptor func(method string, params map[string]string)
	calls       []Call
	faults      wirefake.Faults[fault]
	messages    []*Message
	ephemerals  []Ephemeral
	files       map[string]*file
	uploads     []*Upload
	users       map[string]string // id → name
	// responseUsers maps a response URL's id to the user it answers.
	responseUsers map[string]string
	socket        socketState
	// The workspaces besides the first, and OAuth (see teams.go).
	teams     map[string]Team   // id → workspace
	channels  map[string]string // channel → workspace id, when not the first's
	tokens    map[string]string // bot token from OAuth → workspace or organization id
	approvals []Approval
	codes     map[string]*grant
	rotate    bool // issue expiring tokens
	// The Agents & AI Apps feature (see assistant.go).
	assistant  bool
	assistants map[string]*AssistantThread // by channel/ts
}

// Call is one request to the fake, as received.
type Call struct {
	// Method is the Web API method, or "upload", "download" or
	// "response_url" for those URLs.
	Method string
	// Params holds the form values, or the JSON body's fields (values other
	// than strings as JSON).
	Params map[string]string
	Token  string
	At     time.Time
	Status int    // HTTP status answered
	Error  string // the error code answered, "" for ok
}

// Message is a message as the workspace shows it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // "" for a top-level message
	User     string
	BotID    string // set for the bot's messages
	Subtype  string // "" for a plain message
	Text     string
	Blocks   json.RawMessage
	Files    []string // ids of files shared with it
	Edits    int
	Deleted  bool
	// Reactions are the reaction names on the message, in the order added.
	Reactions []string
}

// Ephemeral is a message only one person saw.
type Ephemeral struct {
	Channel  string // empty for a response-URL message
	User     string
	ThreadTS string
	Text     string
	// ResponseURL is set when it came through a command's response URL.
	ResponseURL bool
}

// Upload is a file the bot uploaded.
type Upload struct {
	FileID   string
	Filename string
	Length   int // declared to files.getUploadURLExternal
	AltText  string
	Data     []byte
	// Set by files.completeUploadExternal:
	Completed      bool
	Title          string
	Channel        string
	ThreadTS       string
	InitialComment string
	// Deleted is set by files.delete.
	Deleted bool
}

// NewServer starts a fake on loopback and stops it when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		BotToken:      "xoxb-slacktest-bot",
		AppToken:      "xapp-slacktest-app",
		SigningSecret: "slacktest-signing-secret",
		TeamID:        "T0FAKE",
		TeamDomain:    "fake",
		AppID:         "A0FAKE",
		BotUserID:     "U0EASEL",
		BotID:         "B0EASEL",
		Command:       "/imagine",
		PingInterval:  5 * time.Second,
		files:         map[string]*file{},
		users:         map[string]string{},
		responseUsers: map[string]string{},
		socket:        socketState{tickets: map[string]bool{}, sent: map[string]sentEnvelope{}},
		ClientID:      "1234567890.0987654321",
		ClientSecret:  "slacktest-client-secret",
		teams:         map[string]Team{},
		channels:      map[string]string{},
		tokens:        map[string]string{},
		codes:         map[string]*grant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.webAPI)
	mux.HandleFunc("POST /upload/{id}", s.receiveUpload)
	mux.HandleFunc("GET /files-pri/{file}/{name...}", s.download)
	mux.HandleFunc("GET /signin", s.signin)
	mux.HandleFunc("POST /response/{id}", s.responseURL)
	mux.HandleFunc("GET /socket", s.serveSocket)
	mux.HandleFunc("GET /oauth/v2/authorize", s.authorizePage)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener = stamped(s.srv.Listener)
	s.srv.Start()
	t.Cleanup(s.Close)
	return s
}

// APIURL returns the Web API root, ending with "/", to configure a client
// with.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close drops the Socket Mode connection and stops the server. It is called
// when the test ends.
func (s *Server) Close() {
	s.closeSocket()
	s.srv.Close()
}

// AddUser names a user, for users.info and the names in payloads.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// Calls returns the requests for method ("" for all), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns every message posted in channel ("" for all), deleted
// ones included, in the order posted.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if channel == "" || m.Channel == channel {
			out = append(out, m.copy())
		}
	}
	return out
}

// Replies returns the replies in the thread rooted at ts in channel, deleted
// ones included, in order.
func (s *Server) Replies(channel, ts string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.ThreadTS == ts && m.TS != ts {
			out = append(out, m)
		}
	}
	return out
}

// Message returns the message ts in channel.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.find(channel, ts); m != nil {
		return m.copy(), true
	}
	return Message{}, false
}

// Ephemerals returns the ephemeral messages shown so far.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ephemerals)
}

// Uploads returns the files the bot uploaded, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Upload, len(s.uploads))
	for i, u := range s.uploads {
		out[i] = *u
		out[i].Data = slices.Clone(u.Data)
	}
	return out
}

// WaitFor waits until cond, which may call the Server's methods, holds; it
// fails the test after WaitTimeout (default 20 seconds: a hang guard, not a
// speed assertion).
func (s *Server) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timeout := s.WaitTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	s.changes.Wait(t, "slacktest", what, timeout, 50*time.Millisecond, cond)
}

// changed wakes the waiters.
func (s *Server) changed() { s.changes.Notify() }

// nextID returns a fresh id with prefix; s.mu is held.
func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%06d", prefix, s.seq)
}

// nextTS returns a fresh message timestamp: the time now in microseconds,
// as Slack's are, kept strictly increasing; s.mu is held.
func (s *Server) nextTS() string {
	s.seq++
	s.lastTS = max(time.Now().UnixMicro(), s.lastTS+1)
	return fmt.Sprintf("%d.%06d", s.lastTS/1e6, s.lastTS%1e6)
}

// find returns message ts of channel, or nil; s.mu is held.
func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (m *Message) copy() Message {
	c := *m
	c.Blocks = slices.Clone(m.Blocks)
	c.Files = slices.Clone(m.Files)
	c.Reactions = slices.Clone(m.Reactions)
	return c
}
