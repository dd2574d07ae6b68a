package discordtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
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
	// Shard and Shards are the shard the IDENTIFY asked for, of how many
	// ([0, 1] when it named none).
	Shard, Shards int
	At            time.Time
	// Refused says why the gateway closed the connection instead of
	// starting a session, or "".
	Refused string
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

// guild returns the guild an event belongs to, which picks its shard, or
// "" (DMs: shard 0).
func (e event) guild() string {
	key := "guild_id"
	if e.t == "GUILD_CREATE" {
		key = "id"
	}
	g, _ := e.d[key].(string)
	return g
}

// frame is an encoded dispatch of a session, kept for RESUME.
type frame struct {
	seq  int64
	t    string
	data []byte
	sent func(time.Time)
}

// session is a gateway session: one shard of the bot, with the
// dispatches it was sent, on a connection or waiting for a RESUME.
type session struct {
	id            string
	shard, shards int
	intents       int
	seq           int64
	log           []frame
	conn          *websocket.Conn // nil while disconnected
	live          bool            // identified or resumed on conn: dispatches are written as they come
}

// gateway is the fake's websocket gateway. The bot may connect once per
// shard.
type gateway struct {
	s *Server

	mu         sync.Mutex // guards the fields below and serialises writes on connections
	conns      map[*websocket.Conn]*connState
	sessions   map[string]*session
	identifies []Identify
	lastByKey  map[int]time.Time // bucket → last IDENTIFY accepted
	resumes    int
	heartbeats int
	overlap    int // dispatches the next RESUME replays from before the client's seq
	replayed   int // dispatches replayed that the client had already received
}

// connState is what the gateway knows of a connection.
type connState struct {
	session  *session
	lastSeen time.Time // the last payload read from it
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Identifies returns the IDENTIFYs received, oldest first, refused ones
// included.
func (s *Server) Identifies() []Identify {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return slices.Clone(s.gw.identifies)
}

// Refused returns the IDENTIFYs the gateway refused (see
// Identify.Refused), oldest first.
func (s *Server) Refused() []Identify {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	var out []Identify
	for _, id := range s.gw.identifies {
		if id.Refused != "" {
			out = append(out, id)
		}
	}
	return out
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

// Connected reports whether the bot is connected and identified or
// resumed: on every shard of the count its latest IDENTIFY named.
func (s *Server) Connected() bool {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	if len(s.gw.identifies) == 0 {
		return false
	}
	n := s.gw.identifies[len(s.gw.identifies)-1].Shards
	return len(s.gw.liveShards(n)) == n
}

// LiveShards returns the shards of count on which the bot is connected
// and identified or resumed.
func (s *Server) LiveShards(count int) []int {
	s.gw.mu.Lock()
	defer s.gw.mu.Unlock()
	return s.gw.liveShards(count)
}

// liveShards returns the live shards of count, in order; g.mu must be held.
func (g *gateway) liveShards(count int) []int {
	var out []int
	for _, ss := range g.sessions {
		if ss.live && ss.shards == count && !slices.Contains(out, ss.shard) {
			out = append(out, ss.shard)
		}
	}
	slices.Sort(out)
	return out
}

// ShardOf returns the shard of count that receives a guild's events, as
// on Discord: (guild_id >> 22) % count; DMs (guild "") go to shard 0.
func ShardOf(guild string, count int) int {
	id, err := strconv.ParseUint(guild, 10, 64)
	if err != nil || count <= 1 {
		return 0
	}
	return int((id >> 22) % uint64(count))
}

// Disconnect closes every gateway connection from the server side with
// close code 4000 (unknown error, which a client may resume after), as
// Discord does when it drops a connection. Dispatches sent while the bot
// is away are replayed when it resumes.
func (s *Server) Disconnect() { s.gw.drop(4000) }

// Reconnect sends RECONNECT (opcode 7) on every gateway connection, as
// Discord does before it moves a session to another server, and stops
// dispatching on them: the client should close the connection (with a
// code other than 1000 or 1001) and RESUME, which replays what it missed.
func (s *Server) Reconnect() {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ss := range g.sessions {
		if ss.conn != nil {
			g.send(ss.conn, map[string]any{"op": opReconnect, "d": nil})
			ss.live = false
		}
	}
}

// InvalidateSession sends INVALID_SESSION (opcode 9) on every gateway
// connection with d = resumable and stops dispatching on them. Unless
// resumable, the sessions are forgotten: a RESUME of one fails and
// dispatches until the next IDENTIFY are lost, as on Discord. The
// connections stay open for the client's IDENTIFY or RESUME.
func (s *Server) InvalidateSession(resumable bool) {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, ss := range g.sessions {
		if ss.conn != nil {
			g.send(ss.conn, map[string]any{"op": opInvalidSession, "d": resumable})
			ss.live = false
		}
		if !resumable {
			if c := g.conns[ss.conn]; c != nil {
				c.session = nil
			}
			delete(g.sessions, id)
		}
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
	for conn := range g.conns {
		closeWith(conn, code, "")
		g.detach(conn)
	}
}

// detach forgets conn, leaving its session to be resumed; g.mu must be
// held.
func (g *gateway) detach(conn *websocket.Conn) {
	if c := g.conns[conn]; c != nil && c.session != nil && c.session.conn == conn {
		c.session.conn, c.session.live = nil, false
	}
	delete(g.conns, conn)
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
	g.mu.Lock()
	if g.conns == nil {
		g.conns, g.sessions, g.lastByKey = map[*websocket.Conn]*connState{}, map[string]*session{}, map[int]time.Time{}
	}
	g.conns[conn] = &connState{lastSeen: time.Now()}
	g.send(conn, map[string]any{"op": opHello, "d": map[string]any{"heartbeat_interval": g.s.heartbeatInterval().Milliseconds()}})
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.detach(conn)
		g.mu.Unlock()
		_ = conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			g.closed(conn, err)
			return
		}
		g.mu.Lock()
		if c := g.conns[conn]; c != nil {
			c.lastSeen = time.Now()
		}
		g.mu.Unlock()
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

// heartbeatInterval is the interval sent in HELLO.
func (s *Server) heartbeatInterval() time.Duration {
	if s.HeartbeatInterval > 0 {
		return s.HeartbeatInterval
	}
	return 41250 * time.Millisecond
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
	if c := g.conns[conn]; c != nil && c.session != nil && c.session.conn == conn {
		delete(g.sessions, c.session.id)
		c.session.live = false
		c.session = nil
	}
}

// send writes a non-dispatch payload; g.mu must be held.
func (g *gateway) send(conn *websocket.Conn, payload any) {
	data, _ := json.Marshal(payload)
	if err := conn.WriteMessage(websocket.TextMessage, data); err != nil {
		if c := g.conns[conn]; c != nil && c.session != nil {
			c.session.live = false
		}
	}
}

func (g *gateway) heartbeat(conn *websocket.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.heartbeats++
	g.send(conn, map[string]any{"op": opHeartbeatACK})
}

// identifyGap is the least time between two IDENTIFYs in one
// max_concurrency bucket, as on Discord.
const identifyGap = 5 * time.Second

// identify starts a new session for the shard the IDENTIFY names: READY,
// then GUILD_CREATE for each of the shard's guilds. As Discord does, it
// closes the connection instead for a bad token (4004), a privileged
// intent not allowed (4014), a shard out of range (4010), or an IDENTIFY
// too soon after another in its max_concurrency bucket (4008, "Rate
// limited"). It also closes with 4008 an IDENTIFY for a shard another
// connection holds and keeps alive: a bot's replicas must not run one
// shard twice. A connection that stopped heartbeating is a zombie: it is
// closed (4009, "Session timed out") and the shard given to the new one.
func (g *gateway) identify(conn *websocket.Conn, d json.RawMessage) {
	var id struct {
		Token   string `json:"token"`
		Intents int    `json:"intents"`
		Shard   []int  `json:"shard"`
	}
	_ = json.Unmarshal(d, &id)
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.conns[conn]
	if c == nil {
		return
	}
	shard, shards := 0, 1
	if len(id.Shard) == 2 {
		shard, shards = id.Shard[0], id.Shard[1]
	}
	now := time.Now()
	rec := Identify{Token: id.Token, Intents: id.Intents, Shard: shard, Shards: shards, At: now}
	refuse := func(code int, text string) {
		rec.Refused = fmt.Sprintf("%d %s", code, text)
		g.identifies = append(g.identifies, rec)
		closeWith(conn, code, text)
		g.detach(conn)
		g.s.mu.Lock()
		g.s.notify()
		g.s.mu.Unlock()
	}
	s := g.s
	maxc := max(s.MaxConcurrency, 1)
	bucket := shard % maxc
	switch {
	case strings.TrimPrefix(id.Token, "Bot ") != s.Token:
		refuse(4004, "Authentication failed.")
		return
	case id.Intents&intentMessageContent != 0 && !s.MessageContentAllowed:
		refuse(4014, "Disallowed intent(s).")
		return
	case shards < 1 || shard < 0 || shard >= shards:
		refuse(4010, "Invalid shard.")
		return
	}
	for sid, other := range g.sessions {
		if other.shard != shard || other.shards != shards || other.conn == nil || other.conn == conn {
			continue
		}
		if oc := g.conns[other.conn]; oc != nil && now.Sub(oc.lastSeen) < s.heartbeatInterval()*3/2 {
			refuse(4008, fmt.Sprintf("Rate limited: shard %d of %d is connected already.", shard, shards))
			return
		}
		closeWith(other.conn, 4009, "Session timed out.")
		g.detach(other.conn)
		delete(g.sessions, sid)
	}
	if !s.UnlimitedIdentifies && now.Sub(g.lastByKey[bucket]) < identifyGap {
		refuse(4008, fmt.Sprintf("Rate limited: an IDENTIFY in bucket %d %s after the last.", bucket, now.Sub(g.lastByKey[bucket]).Round(time.Millisecond)))
		return
	}
	g.lastByKey[bucket] = now
	g.identifies = append(g.identifies, rec)
	if c.session != nil { // an IDENTIFY after INVALID_SESSION on the same connection
		delete(g.sessions, c.session.id)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	ss := &session{id: hex.EncodeToString(b[:]), shard: shard, shards: shards, intents: id.Intents, conn: conn, live: true}
	g.sessions[ss.id] = ss
	c.session = ss

	s.mu.Lock()
	if s.remaining > 0 {
		s.remaining--
	}
	guilds := []any{}
	var creates []event
	for _, gd := range s.guilds {
		if ShardOf(gd.id, shards) != shard {
			continue
		}
		guilds = append(guilds, map[string]any{"id": gd.id, "unavailable": true})
		creates = append(creates, event{t: "GUILD_CREATE", d: s.wireGuild(gd), intent: intentGuilds})
	}
	ready := map[string]any{"v": 10, "user": wireUser(s.Bot), "guilds": guilds, "session_id": ss.id,
		"resume_gateway_url": s.gatewayURL(), "application": map[string]any{"id": s.Bot.ID, "flags": 0},
		"private_channels": []any{}, "session_type": "normal", "shard": []int{shard, shards}}
	s.notify()
	s.mu.Unlock()
	g.enqueue(ss, event{t: "READY", d: ready})
	for _, e := range creates {
		g.enqueue(ss, e)
	}
}

// resume replays the dispatches of a session after the client's sequence
// number, then RESUMED; an unknown session gets INVALID_SESSION (not
// resumable).
func (g *gateway) resume(conn *websocket.Conn, d json.RawMessage) {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(d, &r)
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.conns[conn]
	if c == nil {
		return
	}
	if strings.TrimPrefix(r.Token, "Bot ") != g.s.Token {
		closeWith(conn, 4004, "Authentication failed.")
		g.detach(conn)
		return
	}
	ss := g.sessions[r.SessionID]
	if ss == nil || r.Seq > ss.seq {
		g.send(conn, map[string]any{"op": opInvalidSession, "d": false})
		return
	}
	if ss.conn != nil && ss.conn != conn {
		old := ss.conn
		closeWith(old, 4009, "Session timed out.")
		g.detach(old)
	}
	ss.conn, ss.live, c.session = conn, true, ss
	from := r.Seq - int64(g.overlap)
	g.overlap = 0
	for i := range ss.log {
		f := &ss.log[i]
		if f.seq > r.Seq || f.seq > from && f.t != "READY" { // READY is never replayed
			if f.seq <= r.Seq {
				g.replayed++
			}
			g.write(ss, f)
		}
	}
	g.resumes++
	g.enqueue(ss, event{t: "RESUMED", d: map[string]any{}})
	g.s.mu.Lock()
	g.s.notify()
	g.s.mu.Unlock()
}

// dispatch sends e to the session of the shard its guild belongs to, or
// keeps it for the session's RESUME while it is disconnected. Dispatches
// the session's intents do not cover are not sent.
func (g *gateway) dispatch(e event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	guild := e.guild()
	for _, ss := range g.sessions {
		if ShardOf(guild, ss.shards) == ss.shard {
			g.enqueue(ss, e)
		}
	}
}

// enqueue numbers, logs and (when live) writes e on ss; g.mu must be held.
func (g *gateway) enqueue(ss *session, e event) {
	if e.intent != 0 && ss.intents&e.intent == 0 {
		return
	}
	d := e.d
	if e.content && ss.intents&intentMessageContent == 0 {
		d = maps.Clone(d)
		d["content"], d["embeds"], d["attachments"], d["components"] = "", []any{}, []any{}, []any{}
	}
	ss.seq++
	data, _ := json.Marshal(map[string]any{"op": opDispatch, "t": e.t, "s": ss.seq, "d": d})
	ss.log = append(ss.log, frame{seq: ss.seq, t: e.t, data: data, sent: e.sent})
	if ss.live {
		g.write(ss, &ss.log[len(ss.log)-1])
	}
}

// write sends f on ss's connection; g.mu must be held. A failed write
// leaves the session to be resumed.
func (g *gateway) write(ss *session, f *frame) {
	if ss.conn == nil {
		ss.live = false
		return
	}
	if f.sent != nil {
		f.sent(time.Now()) // stamped before the write: the reply may beat our return
	}
	if err := ss.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
		conn := ss.conn
		_ = conn.Close()
		g.detach(conn)
		return // f.sent stays set: the replay stamps it again
	}
	f.sent = nil
}
