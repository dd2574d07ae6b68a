package slacktest

import (
	"encoding/json"
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
	// Latency is the time from writing the envelope to reading its ack.
	Latency time.Duration
}

// socketState is the Socket Mode side of the fake; guarded by Server.mu.
type socketState struct {
	tickets map[string]bool // issued by apps.connections.open, used once
	conn    *wsConn         // the connection envelopes go to
	opened  int
	sent    map[string]sentEnvelope
	acks    []Ack
}

type sentEnvelope struct {
	typ string
	at  time.Time
}

// wsConn is one Socket Mode connection.
type wsConn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex // one writer at a time
	done chan struct{}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// openSocket issues a one-time websocket URL; s.mu is held.
func (s *Server) openSocket() string {
	ticket := s.nextID("ticket-")
	s.socket.tickets[ticket] = true
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket?ticket=" + ticket
}

// serveSocket accepts a Socket Mode connection, says hello and reads acks
// until the connection ends.
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
	s.socket.opened++
	s.changed()
	interval := s.PingInterval
	s.mu.Unlock()
	go c.ping(interval)
	s.readAcks(c)
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
		s.changed()
		s.mu.Unlock()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		sent := s.socket.sent[ack.EnvelopeID]
		s.socket.acks = append(s.socket.acks, Ack{EnvelopeID: ack.EnvelopeID, Type: sent.typ, Payload: ack.Payload, Latency: now.Sub(sent.at)})
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
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socket.opened
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
// for a connection first.
func (s *Server) Send(t testing.TB, env Envelope) string {
	t.Helper()
	c := s.conn(t)
	s.mu.Lock()
	id := s.nextID("env-")
	s.mu.Unlock()
	msg, err := json.Marshal(map[string]any{
		"envelope_id": id, "type": env.Type, "payload": env.Payload,
		"accepts_response_payload": env.Type != "events_api",
		"retry_attempt":            env.RetryAttempt, "retry_reason": env.RetryReason,
	})
	if err != nil {
		t.Fatalf("slacktest: envelope: %v", err)
	}
	c.wmu.Lock()
	s.mu.Lock()
	s.socket.sent[id] = sentEnvelope{typ: env.Type, at: time.Now()}
	s.mu.Unlock()
	err = c.ws.WriteMessage(websocket.TextMessage, msg)
	c.wmu.Unlock()
	if err != nil {
		t.Fatalf("slacktest: send envelope: %v", err)
	}
	return id
}

// Disconnect asks the app to reconnect, as Slack does before it rotates a
// connection, and forgets the current connection.
func (s *Server) Disconnect(t testing.TB) {
	t.Helper()
	c := s.conn(t)
	msg, _ := json.Marshal(map[string]any{"type": "disconnect", "reason": "refresh_requested",
		"debug_info": map[string]any{"host": "slacktest"}})
	if err := c.write(msg); err != nil {
		t.Fatalf("slacktest: disconnect: %v", err)
	}
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

// closeSocket closes the current connection.
func (s *Server) closeSocket() {
	s.mu.Lock()
	c := s.socket.conn
	s.socket.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.ws.Close()
	}
}
