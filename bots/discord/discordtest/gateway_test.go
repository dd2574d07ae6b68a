package discordtest_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// identify identifies on g and returns the session id and the sequence
// number of the last dispatch read (GUILD_CREATE).
func identify(g gateway, token string) (string, float64) {
	g.t.Helper()
	g.send(2, map[string]any{"token": "Bot " + token, "intents": 1 | 1<<9 | 1<<15})
	ready := g.next("READY")
	gc := g.next("GUILD_CREATE")
	return ready["d"].(map[string]any)["session_id"].(string), gc["s"].(float64)
}

// closeWith closes g's connection with a close frame carrying code.
func closeWith(g gateway, code int) {
	g.t.Helper()
	msg := websocket.FormatCloseMessage(code, "")
	if err := g.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		g.t.Fatal(err)
	}
	g.conn.Close()
}

func TestGatewayReconnectAndResume(t *testing.T) {
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	c := client{t, srv}
	g := dial(t, c)
	session, seq := identify(g, srv.Token)

	srv.Reconnect()
	if p := g.read(); p["op"] != 7.0 {
		t.Fatalf("got %v, want RECONNECT", p)
	}
	missed := srv.Mention(srv.Alice, srv.Channel, "while away") // not sent on the old connection
	closeWith(g, 1012)                                          // "service restart": the session stays
	g = dial(t, c)
	g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": session, "seq": seq})
	if p := g.read(); p["t"] != "MESSAGE_CREATE" || p["d"].(map[string]any)["id"] != missed.ID {
		t.Fatalf("after RESUME got %v, want the missed message", p)
	}
	resumed := g.next("RESUMED")
	seq = resumed["s"].(float64)

	// A client that closes with 1000 ends its session.
	srv.Wait(t, "the fake to see the resumed session", func() bool { return srv.Resumes() == 1 })
	closeWith(g, websocket.CloseNormalClosure)
	srv.Wait(t, "the connection to end", func() bool { return !srv.Connected() })
	g = dial(t, c)
	g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": session, "seq": seq})
	if p := g.read(); p["op"] != 9.0 || p["d"] != false {
		t.Errorf("RESUME after a 1000 close: %v, want INVALID_SESSION false", p)
	}
}

func TestGatewayInvalidSession(t *testing.T) {
	for _, resumable := range []bool{false, true} {
		srv := discordtest.NewServer(t)
		srv.MessageContentAllowed = true
		c := client{t, srv}
		g := dial(t, c)
		session, seq := identify(g, srv.Token)
		srv.InvalidateSession(resumable)
		if p := g.read(); p["op"] != 9.0 || p["d"] != resumable {
			t.Fatalf("got %v, want INVALID_SESSION %v", p, resumable)
		}
		srv.Say(srv.Alice, srv.Channel, "after the invalidation")
		g.conn.Close()
		g = dial(t, c)
		g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": session, "seq": seq})
		p := g.read()
		switch {
		case resumable && p["t"] != "MESSAGE_CREATE":
			t.Errorf("RESUME of a resumable session: %v, want the message sent since", p)
		case !resumable && (p["op"] != 9.0 || p["d"] != false):
			t.Errorf("RESUME of an invalidated session: %v, want INVALID_SESSION false", p)
		}
	}
}

func TestGatewayReplayOnResumeRepeatsDispatches(t *testing.T) {
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	c := client{t, srv}
	g := dial(t, c)
	session, _ := identify(g, srv.Token)
	m := srv.Mention(srv.Alice, srv.Channel, "seen already")
	seq := g.next("MESSAGE_CREATE")["s"].(float64)

	srv.ReplayOnResume(100)
	srv.Disconnect()
	g = dial(t, c)
	g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": session, "seq": seq})
	var types []string
	for {
		p := g.read()
		if p["t"] == "RESUMED" {
			break
		}
		types = append(types, p["t"].(string))
		if p["t"] == "MESSAGE_CREATE" && p["d"].(map[string]any)["id"] != m.ID {
			t.Errorf("replayed %v", p)
		}
	}
	if n := srv.Replayed(); n != 2 {
		t.Errorf("Replayed = %d, want 2", n)
	}
	// GUILD_CREATE and the message again; READY never.
	if len(types) != 2 || types[0] != "GUILD_CREATE" || types[1] != "MESSAGE_CREATE" {
		t.Errorf("replayed %v, want GUILD_CREATE and MESSAGE_CREATE", types)
	}
}
