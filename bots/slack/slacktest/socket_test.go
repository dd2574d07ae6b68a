package slacktest_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// frame is a Socket Mode message as an app reads it.
type frame struct {
	Type         string          `json:"type"`
	Reason       string          `json:"reason"`
	EnvelopeID   string          `json:"envelope_id"`
	Payload      json.RawMessage `json:"payload"`
	RetryAttempt int             `json:"retry_attempt"`
	RetryReason  string          `json:"retry_reason"`
}

// dial opens a Socket Mode connection as an app does and reads its hello.
func dial(t *testing.T, s *slacktest.Server) *websocket.Conn {
	t.Helper()
	_, _, b := post(t, s, "apps.connections.open", s.AppToken, url.Values{})
	u, _ := b["url"].(string)
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %q: %v", u, err)
	}
	t.Cleanup(func() { ws.Close() })
	if f := read(t, ws); f.Type != "hello" {
		t.Fatalf("first message %+v, want hello", f)
	}
	return ws
}

func read(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f frame
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func TestUnacknowledgedEnvelopesAreRedelivered(t *testing.T) {
	s := slacktest.NewServer(t)
	ws := dial(t, s)
	first := s.Send(t, s.SlashCommand("U1", "C1", "a kite"))
	if f := read(t, ws); f.EnvelopeID != first || f.RetryAttempt != 0 || f.RetryReason != "" {
		t.Fatalf("first delivery %+v", f)
	}
	acked := s.Send(t, s.SlashCommand("U1", "C1", "a boat"))
	_ = read(t, ws)
	if err := ws.WriteJSON(map[string]string{"envelope_id": acked}); err != nil {
		t.Fatal(err)
	}
	s.WaitAck(t, acked)

	// Each new connection gets the unacknowledged envelope again, with the
	// same payload under a new envelope id, until Slack gives up.
	for attempt := 1; attempt <= slacktest.MaxRetries; attempt++ {
		s.Drop(t, attempt%2 == 0)
		ws = dial(t, s)
		f := read(t, ws)
		if f.EnvelopeID == first || f.RetryAttempt != attempt || f.RetryReason != "timeout" || f.Type != "slash_commands" {
			t.Fatalf("redelivery %d: %+v", attempt, f)
		}
		var cmd map[string]string
		if json.Unmarshal(f.Payload, &cmd) != nil || cmd["text"] != "a kite" {
			t.Fatalf("redelivery %d carries %s", attempt, f.Payload)
		}
	}
	s.Drop(t, false)
	ws = dial(t, s)
	marker := s.Send(t, s.SlashCommand("U1", "C1", "a marker"))
	if f := read(t, ws); f.EnvelopeID != marker {
		t.Fatalf("after %d retries got %+v, want no more redeliveries", slacktest.MaxRetries, f)
	}
	if got := s.Redeliveries(); len(got) != slacktest.MaxRetries || got[0].Of != first {
		t.Errorf("redeliveries %+v", got)
	}
	if n := s.Connections(); n != slacktest.MaxRetries+2 {
		t.Errorf("%d connections, want %d", n, slacktest.MaxRetries+2)
	}
}

func TestLostAcksLeaveEnvelopesPending(t *testing.T) {
	s := slacktest.NewServer(t)
	ws := dial(t, s)
	s.LoseAcks(t)
	id := s.Send(t, s.SlashCommand("U1", "C1", "a kite"))
	_ = read(t, ws)
	if err := ws.WriteJSON(map[string]string{"envelope_id": id}); err != nil {
		t.Fatal(err)
	}
	s.DisconnectWith(t, slacktest.DisconnectRefresh)
	if f := read(t, ws); f.Type != "disconnect" || f.Reason != slacktest.DisconnectRefresh {
		t.Fatalf("got %+v, want a disconnect", f)
	}
	ws2 := dial(t, s)
	f := read(t, ws2)
	if f.RetryAttempt != 1 || f.RetryReason != "timeout" {
		t.Fatalf("redelivery %+v", f)
	}
	if err := ws2.WriteJSON(map[string]string{"envelope_id": f.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	if ack := s.WaitAcked(t, id); ack.EnvelopeID != f.EnvelopeID || ack.RetryAttempt != 1 {
		t.Errorf("ack %+v, want the redelivery's", ack)
	}
	for _, a := range s.Acks() {
		if a.EnvelopeID == id {
			t.Errorf("the lost ack of %s was recorded", id)
		}
	}
}

func TestDisconnectWarningKeepsTheConnection(t *testing.T) {
	s := slacktest.NewServer(t)
	ws := dial(t, s)
	s.DisconnectWith(t, slacktest.DisconnectWarning)
	if f := read(t, ws); f.Type != "disconnect" || f.Reason != slacktest.DisconnectWarning {
		t.Fatalf("got %+v", f)
	}
	id := s.Send(t, s.SlashCommand("U1", "C1", "still here"))
	if f := read(t, ws); f.EnvelopeID != id {
		t.Fatalf("got %+v, want the envelope on the warned connection", f)
	}
}
