package slacktest

import (
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Envelope is one delivery from Slack to the app: in Socket Mode the
// envelope's type and payload, in http mode the request body.
type Envelope struct {
	// Type is "events_api", "slash_commands" or "interactive".
	Type string
	// Payload is the event_callback (or url_verification) object, the slash
	// command's fields as an object of strings, or the interaction payload.
	Payload json.RawMessage
	// RetryAttempt and RetryReason mark a redelivery (X-Slack-Retry-Num and
	// X-Slack-Retry-Reason in http mode).
	RetryAttempt int
	RetryReason  string
}

// Ack is an envelope's acknowledgement as received.
type Ack struct {
	EnvelopeID string
	Type       string
	Payload    json.RawMessage // what the app answered with, if anything
	// Latency is the time from writing the envelope to its ack reaching
	// the fake: on Linux, the kernel's receive timestamp of the ack's
	// bytes, so that the time the fake's own goroutines wait for a CPU is
	// not counted; elsewhere, when the fake read it.
	Latency time.Duration
	// RetryAttempt is the acknowledged envelope's retry_attempt: 0 for a
	// first delivery.
	RetryAttempt int
}

// Redelivery is an envelope delivered again on a later connection because
// no ack for it had arrived when that connection started, as Slack retries
// an envelope it considers timed out.
type Redelivery struct {
	EnvelopeID string // the new delivery's envelope id
	Of         string // the envelope id of the first delivery
	// RetryAttempt is the new delivery's retry_attempt, 1 to MaxRetries;
	// its retry_reason is "timeout".
	RetryAttempt int
}

// MaxRetries is how often an unacknowledged envelope is redelivered before
// the fake gives up on it, as Slack does after three retries.
const MaxRetries = 3

// Reasons of a disconnect envelope, as Slack sends them.
const (
	// DisconnectRefresh: Slack is about to close the connection (it rotates
	// connections every few hours) and the app should open another.
	DisconnectRefresh = "refresh_requested"
	// DisconnectWarning: Slack will ask for a refresh in about ten
	// seconds; the connection still works until then.
	DisconnectWarning = "warning"
	// DisconnectLinkDisabled: Socket Mode was turned off for the app.
	DisconnectLinkDisabled = "link_disabled"
)

// socketState is the Socket Mode side of the fake; guarded by Server.mu.
type socketState struct {
	tickets      map[string]bool  // issued by apps.connections.open, used once
	conn         *wsConn          // the connection envelopes go to
	conns        map[*wsConn]bool // every connection still open; made on first use
	opened       int
	sent         map[string]sentEnvelope
	order        []string // envelope ids, in the order sent
	acks         []Ack
	redeliveries []Redelivery
}

// sentEnvelope is an envelope written (or being written) to a connection.
type sentEnvelope struct {
	env   Envelope
	at    time.Time
	conn  *wsConn
	of    string // the envelope id of the first delivery
	acked bool
	moved bool // redelivered on a later connection, or given up on
}

// wsConn is one Socket Mode connection.
type wsConn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex // one writer at a time
	done chan struct{}
	deaf bool // acks read from it are lost; guarded by Server.mu
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// openSocket issues a one-time websocket URL; s.mu is held.
func (s *Server) openSocket() string {
	ticket := s.nextID("ticket-")
	s.socket.tickets[ticket] = true
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket?ticket=" + ticket
}

// serveSocket accepts a Socket Mode connection, says hello, redelivers the
// envelopes earlier connections left unacknowledged and reads acks until
// the connection ends.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.socket.tickets[ticket]
	delete(s.socket.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": s.AppID}})
	if c.write(hello) != nil {
		ws.Close()
		return
	}
	s.mu.Lock()
	s.socket.conn = c
	if s.socket.conns == nil {
		s.socket.conns = map[*wsConn]bool{}
	}
	s.socket.conns[c] = true
	s.socket.opened++
	again := s.unacknowledged(c)
	s.changed()
	interval := s.PingInterval
	s.mu.Unlock()
	go c.ping(interval)
	for _, p := range again {
		s.deliver(c, p.env, p.of)
	}
	s.readAcks(c)
}

// pending is an envelope to deliver again.
type pending struct {
	env Envelope
	of  string
}

// unacknowledged returns the envelopes sent on connections other than c
// that are still unacknowledged, as retries, and marks them moved; s.mu is
// held. Envelopes retried MaxRetries times already are dropped.
func (s *Server) unacknowledged(c *wsConn) []pending {
	var out []pending
	for _, id := range s.socket.order {
		se := s.socket.sent[id]
		if se.conn == c || se.acked || se.moved {
			continue
		}
		se.moved = true
		s.socket.sent[id] = se
		if se.env.RetryAttempt >= MaxRetries {
			continue
		}
		env := se.env
		env.RetryAttempt++
		env.RetryReason = "timeout"
		out = append(out, pending{env: env, of: se.of})
	}
	return out
}

// readAcks records every ack read from c until it closes.
func (s *Server) readAcks(c *wsConn) {
	defer func() {
		close(c.done)
		c.ws.Close()
		s.mu.Lock()
		if s.socket.conn == c {
			s.socket.conn = nil
		}
		delete(s.socket.conns, c)
		s.changed()
		s.mu.Unlock()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := arrival(c.ws.UnderlyingConn())
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		if c.deaf {
			s.mu.Unlock()
			continue
		}
		a := Ack{EnvelopeID: ack.EnvelopeID, Payload: ack.Payload}
		if sent, ok := s.socket.sent[ack.EnvelopeID]; ok {
			sent.acked = true
			s.socket.sent[ack.EnvelopeID] = sent
			a.Type, a.Latency, a.RetryAttempt = sent.env.Type, now.Sub(sent.at), sent.env.RetryAttempt
			if a.Latency < 0 { // the wall clock stepped back
				a.Latency = time.Since(sent.at)
			}
		}
		s.socket.acks = append(s.socket.acks, a)
		s.changed()
		s.mu.Unlock()
	}
}

func (c *wsConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// ping pings the connection every interval until it closes.
func (c *wsConn) ping(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second)) != nil {
				return
			}
		}
	}
}

// Connected waits for a Socket Mode connection and returns how many have
// been opened so far.
func (s *Server) Connected(t testing.TB) int {
	t.Helper()
	s.conn(t)
	return s.Connections()
}

// Connections returns how many Socket Mode connections have been opened
// (each said hello) so far, without waiting.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socket.opened
}

// OpenConnections returns how many Socket Mode connections are open now.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.socket.conns)
}

// conn waits for the current Socket Mode connection.
func (s *Server) conn(t testing.TB) *wsConn {
	t.Helper()
	var c *wsConn
	s.WaitFor(t, "a Socket Mode connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		c = s.socket.conn
		return c != nil
	})
	return c
}

// Send delivers env over Socket Mode and returns its envelope id. It waits
// for a connection first. An envelope whose connection fails before its
// ack arrives is redelivered on the next connection, as Slack does.
func (s *Server) Send(t testing.TB, env Envelope) string {
	t.Helper()
	id, err := s.deliver(s.conn(t), env, "")
	if err != nil {
		t.Logf("slacktest: envelope %s not written (%v); it will be redelivered on the next connection", id, err)
	}
	return id
}

// deliver writes env to c under a fresh envelope id and returns the id. of
// names the first delivery of a redelivered envelope.
func (s *Server) deliver(c *wsConn, env Envelope, of string) (string, error) {
	s.mu.Lock()
	id := s.nextID("env-")
	s.socket.sent[id] = sentEnvelope{env: env, conn: c, of: either(of, id)}
	s.socket.order = append(s.socket.order, id)
	if of != "" {
		s.socket.redeliveries = append(s.socket.redeliveries, Redelivery{EnvelopeID: id, Of: of, RetryAttempt: env.RetryAttempt})
		s.changed()
	}
	s.mu.Unlock()
	msg := mustJSON(map[string]any{
		"envelope_id": id, "type": env.Type, "payload": env.Payload,
		"accepts_response_payload": env.Type != "events_api",
		"retry_attempt":            env.RetryAttempt, "retry_reason": env.RetryReason,
	})
	c.wmu.Lock()
	defer c.wmu.Unlock()
	s.mu.Lock()
	se := s.socket.sent[id]
	se.at = time.Now()
	s.socket.sent[id] = se
	s.mu.Unlock()
	return id, c.ws.WriteMessage(websocket.TextMessage, msg)
}

// Disconnect asks the app to reconnect, as Slack does before it rotates a
// connection: DisconnectWith(t, DisconnectRefresh).
func (s *Server) Disconnect(t testing.TB) {
	t.Helper()
	s.DisconnectWith(t, DisconnectRefresh)
}

// DisconnectWith sends a disconnect envelope with reason on the current
// connection. For DisconnectWarning the connection stays the one envelopes
// go to until the app opens another; for any other reason it is forgotten
// at once, so later envelopes wait for a new connection. The fake does not
// close the old connection: an app that ignores the envelope gets nothing
// more on it.
func (s *Server) DisconnectWith(t testing.TB, reason string) {
	t.Helper()
	c := s.conn(t)
	msg := mustJSON(map[string]any{"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "slacktest"}})
	if err := c.write(msg); err != nil {
		t.Fatalf("slacktest: disconnect: %v", err)
	}
	if reason != DisconnectWarning {
		s.forget(c)
	}
}

// Drop ends the current connection abruptly, without a close frame, as a
// dying load balancer or a NAT timeout does: with reset, the TCP connection
// is reset (RST); otherwise it is closed (FIN). Envelopes it left
// unacknowledged are redelivered on the next connection.
func (s *Server) Drop(t testing.TB, reset bool) {
	t.Helper()
	c := s.conn(t)
	s.forget(c)
	if tc, ok := c.ws.NetConn().(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = c.ws.NetConn().Close()
}

// LoseAcks makes the acks the app sends on the current connection from now
// on go missing, as when the network between the app and Slack fails in one
// direction: the envelopes they answer stay unacknowledged, so they are
// redelivered on the next connection although the app handled them.
func (s *Server) LoseAcks(t testing.TB) {
	t.Helper()
	c := s.conn(t)
	s.mu.Lock()
	c.deaf = true
	s.mu.Unlock()
}

// forget stops routing envelopes to c.
func (s *Server) forget(c *wsConn) {
	s.mu.Lock()
	if s.socket.conn == c {
		s.socket.conn = nil
	}
	s.mu.Unlock()
}

// Acks returns every ack received so far, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.socket.acks)
}

// Redeliveries returns the redelivered envelopes so far, in order.
func (s *Server) Redeliveries() []Redelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.socket.redeliveries)
}

// WaitAck waits for the ack of envelope id.
func (s *Server) WaitAck(t testing.TB, id string) Ack {
	t.Helper()
	var ack Ack
	s.WaitFor(t, "the ack of "+id, func() bool {
		for _, a := range s.Acks() {
			if a.EnvelopeID == id {
				ack = a
				return true
			}
		}
		return false
	})
	return ack
}

// WaitAcked waits until envelope id, first delivered under that id, is
// acknowledged in any of its deliveries, and returns that ack.
func (s *Server) WaitAcked(t testing.TB, id string) Ack {
	t.Helper()
	var ack Ack
	s.WaitFor(t, "an ack of "+id+" or of a redelivery of it", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range s.socket.acks {
			if se, ok := s.socket.sent[a.EnvelopeID]; ok && se.of == id {
				ack = a
				return true
			}
		}
		return false
	})
	return ack
}

// closeSocket closes every connection.
func (s *Server) closeSocket() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.socket.conns))
	for c := range s.socket.conns {
		conns = append(conns, c)
	}
	s.socket.conn = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.Close()
	}
}
