package discordtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway intents the fake honours (GatewayIntentBits).
const (
	intentGuilds         = 1 << 0
	intentGuildMessages  = 1 << 9
	intentDirectMessages = 1 << 12
	intentMessageContent = 1 << 15
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
)

// Identify is an IDENTIFY the gateway received.
type Identify struct {
	Token   string
	Intents int
	At      time.Time
}

// event is a dispatch for the gateway to send.
type event struct {
	t      string
	d      map[string]any
	intent int // the intent the bot needs to receive it; 0 for none
	// content marks a guild message by someone else that does not mention
	// the bot: without the Message Content intent its content, embeds,
	// attachments and components arrive empty.
	content bool
	// sent, if set, is called as the dispatch is first written.
	sent func(time.Time)
}

// frame is an encoded dispatch of the current session, kept for RESUME.
type frame struct {
	seq  int64
	t    string
	data []byte
	sent func(time.Time)
}

// gateway is the fake's websocket gateway. One bot connects at a time.
type gateway struct {
	s *Server

	mu         sync.Mutex // guards the fields below and serialises writes on conn
	conn       *websocket.Conn
	live       bool // identified or resumed: dispatches are written as they come
	session    string
	intents    int
	seq        int64
	log        []frame
	identifies []Identify
	resumes    int
	heartbeats int
	overlap    int // dispatches the next RESUME replays from before the client's seq
	replayed   int // dispatches replayed that the client had already received
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Identifies returns the IDENTIFYs received, oldest first.
func (s *Server) Identifies() []Identify {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return slices.Clone(s.gw.identifies)
}

// Resumes returns how many sessions were resumed.
func (s *Server) Resumes() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.resumes
}

// Replayed returns how many dispatches RESUMEs replayed that the client
// had already received (see ReplayOnResume).
func (s *Server) Replayed() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.replayed
}

// Heartbeats returns how many heartbeats were received (and acknowledged).
func (s *Server) Heartbeats() int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.heartbeats
}

// Connected reports whether the bot is connected and identified or resumed.
func (s *Server) Connected() bool {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.live
}

// Disconnect closes the gateway connection from the server side with close
// code 4000 (unknown error, which a client may resume after), as Discord
// does when it drops a connection. Dispatches sent while the bot is away are
// replayed when it resumes.
func (s *Server) Disconnect() { s.gw.drop(4000) }

// Reconnect sends RECONNECT (opcode 7) on the gateway connection, as
// Discord does before it moves a session to another server, and stops
// dispatching on it: the client should close the connection (with a code
// other than 1000 or 1001) and RESUME, which replays what it missed.
func (s *Server) Reconnect() {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil {
		g.send(g.conn, map[string]any{"op": opReconnect, "d": nil})
		g.live = false
	}
}

// InvalidateSession sends INVALID_SESSION (opcode 9) on the gateway
// connection with d = resumable and stops dispatching on it. Unless
// resumable, the session is forgotten: a RESUME of it fails and dispatches
// until the next IDENTIFY are lost, as on Discord. The connection stays
// open for the client's IDENTIFY or RESUME.
func (s *Server) InvalidateSession(resumable bool) {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil {
		g.send(g.conn, map[string]any{"op": opInvalidSession, "d": resumable})
		g.live = false
	}
	if !resumable {
		g.session, g.log = "", nil
	}
}

// ReplayOnResume makes the next RESUME replay, besides what the client
// missed, the n dispatches it already received, as a gateway may that
// cannot tell how far the client got. Clients must drop such duplicates.
func (s *Server) ReplayOnResume(n int) {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	s.gw.overlap = n
}

func (g *gateway) drop(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil {
		closeWith(g.conn, code, "")
		g.conn, g.live = nil, false
	}
}

func closeWith(conn *websocket.Conn, code int, text string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	_ = conn.Close()
}

// serve runs one gateway connection: HELLO, then IDENTIFY or RESUME, then
// heartbeats until the connection ends.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Get("encoding") != "json" || (q.Get("v") != "9" && q.Get("v") != "10") {
		http.Error(w, "the fake gateway speaks v=9 or v=10 with encoding=json", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	interval := g.s.HeartbeatInterval
	if interval <= 0 {
		interval = 41250 * time.Millisecond
	}
	g.mu.Lock()
	if g.conn != nil {
		_ = g.conn.Close()
	}
	g.conn, g.live = conn, false
	g.send(conn, map[string]any{"op": opHello, "d": map[string]any{"heartbeat_interval": interval.Milliseconds()}})
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if g.conn == conn {
			g.conn, g.live = nil, false
		}
		g.mu.Unlock()
		_ = conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			g.closed(conn, err)
			return
		}
		var p struct {
			Op int             `json:"op"`
			D  json.RawMessage `json:"d"`
		}
		if json.Unmarshal(data, &p) != nil {
			closeWith(conn, 4002, "Error while decoding payload.")
			return
		}
		switch p.Op {
		case opHeartbeat:
			g.heartbeat(conn)
		case opIdentify:
			g.identify(conn, p.D)
		case opResume:
			g.resume(conn, p.D)
		}
	}
}

// closed handles the end of conn: a client that closes with 1000 or 1001
// ends its session, as on Discord, so it cannot be resumed.
func (g *gateway) closed(conn *websocket.Conn, err error) {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || (ce.Code != websocket.CloseNormalClosure && ce.Code != websocket.CloseGoingAway) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == conn {
		g.session, g.log, g.live = "", nil, false
	}
}

// send writes a non-dispatch payload; g.mu must be held.
func (g *gateway) send(conn *websocket.Conn, payload any) {
	data, _ := json.Marshal(payload)
	if err := conn.WriteMessage(websocket.TextMessage, data); err != nil && g.conn == conn {
		g.live = false
	}
}

func (g *gateway) heartbeat(conn *websocket.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.heartbeats++
	g.send(conn, map[string]any{"op": opHeartbeatACK})
}

// identify starts a new session: READY, then GUILD_CREATE for each guild.
func (g *gateway) identify(conn *websocket.Conn, d json.RawMessage) {
	var id struct {
		Token   string `json:"token"`
		Intents int    `json:"intents"`
	}
	_ = json.Unmarshal(d, &id)
	g.mu.Lock()
	defer g.mu.Unlock()
	if conn != g.conn {
		return
	}
	g.identifies = append(g.identifies, Identify{Token: id.Token, Intents: id.Intents, At: time.Now()})
	switch {
	case strings.TrimPrefix(id.Token, "Bot ") != g.s.Token:
		closeWith(conn, 4004, "Authentication failed.")
		return
	case id.Intents&intentMessageContent != 0 && !g.s.MessageContentAllowed:
		closeWith(conn, 4014, "Disallowed intent(s).")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	g.session, g.intents, g.seq, g.log = hex.EncodeToString(b[:]), id.Intents, 0, nil
	g.live = true

	s := g.s
	s.mu.Lock()
	guilds := []any{}
	var creates []event
	for _, gd := range s.guilds {
		guilds = append(guilds, map[string]any{"id": gd.id, "unavailable": true})
		creates = append(creates, event{t: "GUILD_CREATE", d: s.wireGuild(gd), intent: intentGuilds})
	}
	ready := map[string]any{"v": 10, "user": wireUser(s.Bot), "guilds": guilds, "session_id": g.session,
		"resume_gateway_url": s.gatewayURL(), "application": map[string]any{"id": s.Bot.ID, "flags": 0},
		"private_channels": []any{}, "session_type": "normal", "shard": []int{0, 1}}
	s.notify()
	s.mu.Unlock()
	g.enqueue(event{t: "READY", d: ready})
	for _, e := range creates {
		g.enqueue(e)
	}
}

// resume replays the dispatches after the client's sequence number, then
// RESUMED; an unknown session gets INVALID_SESSION (not resumable).
func (g *gateway) resume(conn *websocket.Conn, d json.RawMessage) {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(d, &r)
	g.mu.Lock()
	defer g.mu.Unlock()
	if conn != g.conn {
		return
	}
	if strings.TrimPrefix(r.Token, "Bot ") != g.s.Token {
		closeWith(conn, 4004, "Authentication failed.")
		return
	}
	if r.SessionID != g.session || r.Seq > g.seq {
		g.send(conn, map[string]any{"op": opInvalidSession, "d": false})
		return
	}
	g.live = true
	from := r.Seq - int64(g.overlap)
	g.overlap = 0
	for i := range g.log {
		f := &g.log[i]
		if f.seq > r.Seq || f.seq > from && f.t != "READY" { // READY is never replayed
			if f.seq <= r.Seq {
				g.replayed++
			}
			g.write(f)
		}
	}
	g.resumes++
	g.enqueue(event{t: "RESUMED", d: map[string]any{}})
	g.s.mu.Lock()
	g.s.notify()
	g.s.mu.Unlock()
}

// dispatch sends e to the bot, or keeps it for the bot's RESUME while it is
// disconnected. Dispatches the session's intents do not cover are not sent.
func (g *gateway) dispatch(e event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.enqueue(e)
}

// enqueue numbers, logs and (when live) writes e; g.mu must be held.
func (g *gateway) enqueue(e event) {
	if g.session == "" || e.intent != 0 && g.intents&e.intent == 0 {
		return
	}
	d := e.d
	if e.content && g.intents&intentMessageContent == 0 {
		d = maps.Clone(d)
		d["content"], d["embeds"], d["attachments"], d["components"] = "", []any{}, []any{}, []any{}
	}
	g.seq++
	data, _ := json.Marshal(map[string]any{"op": opDispatch, "t": e.t, "s": g.seq, "d": d})
	g.log = append(g.log, frame{seq: g.seq, t: e.t, data: data, sent: e.sent})
	if g.live {
		g.write(&g.log[len(g.log)-1])
	}
}

// write sends f on the current connection; g.mu must be held. A failed
// write leaves the session to be resumed.
func (g *gateway) write(f *frame) {
	if g.conn == nil {
		g.live = false
		return
	}
	if f.sent != nil {
		f.sent(time.Now()) // stamped before the write: the reply may beat our return
	}
	if err := g.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
		_ = g.conn.Close()
		g.conn, g.live = nil, false
		return // f.sent stays set: the replay stamps it again
	}
	f.sent = nil
}
