package discordtest_test

import (
	"errors"
	"strings"
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

// identifyShard identifies on g as shard of shards and returns READY's data.
func identifyShard(g gateway, token string, shard, shards int) map[string]any {
	g.t.Helper()
	g.send(2, map[string]any{"token": "Bot " + token, "intents": 1 | 1<<9 | 1<<12 | 1<<15, "shard": []int{shard, shards}})
	return g.next("READY")["d"].(map[string]any)
}

// closeCode reads from g until its connection ends, and returns the close
// code.
func closeCode(g gateway) int {
	g.t.Helper()
	_ = g.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := g.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			g.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func TestGatewayShards(t *testing.T) {
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	srv.Shards, srv.MaxConcurrency = 2, 2
	c := client{t, srv}
	// A second guild on the other shard than the first.
	first := discordtest.ShardOf(srv.Guild, 2)
	var other, otherChannel string
	for other == "" || discordtest.ShardOf(other, 2) == first {
		time.Sleep(time.Millisecond)
		other, otherChannel = srv.AddGuild("Other", 0)
	}
	_, body, _ := c.do("GET", "/gateway/bot", nil)
	gb := body.(map[string]any)
	if gb["shards"] != 2.0 || gb["session_start_limit"].(map[string]any)["max_concurrency"] != 2.0 {
		t.Fatalf("GET /gateway/bot: %v", gb)
	}

	// Shards 0 and 1 are in buckets 0 and 1: both may identify at once.
	conns := map[int]gateway{}
	guilds := map[int]string{first: srv.Guild, 1 - first: other}
	channels := map[int]string{first: srv.Channel, 1 - first: otherChannel}
	for sh := range 2 {
		g := dial(t, c)
		ready := identifyShard(g, srv.Token, sh, 2)
		listed := false
		for _, gd := range ready["guilds"].([]any) {
			id := gd.(map[string]any)["id"].(string)
			listed = listed || id == guilds[sh]
			if discordtest.ShardOf(id, 2) != sh {
				t.Errorf("READY of shard %d lists guild %s of another shard", sh, id)
			}
		}
		if !listed {
			t.Errorf("READY of shard %d does not list guild %s", sh, guilds[sh])
		}
		conns[sh] = g
	}
	if !srv.Connected() || len(srv.LiveShards(2)) != 2 {
		t.Fatalf("connected %v, live shards %v", srv.Connected(), srv.LiveShards(2))
	}
	// Each guild's messages go to its own shard only; DMs to shard 0.
	for sh := range 2 {
		m := srv.Say(srv.Alice, channels[sh], "hello")
		if p := conns[sh].next("MESSAGE_CREATE"); p["d"].(map[string]any)["id"] != m.ID {
			t.Errorf("shard %d got %v", sh, p)
		}
	}
	dm := srv.DM(srv.Bob, "psst")
	if p := conns[0].next("MESSAGE_CREATE"); p["d"].(map[string]any)["id"] != dm.ID {
		t.Errorf("shard 0 got %v, want the DM", p)
	}
	_ = conns[1].conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := conns[1].conn.ReadMessage(); err == nil {
		t.Errorf("shard 1 got %s, want nothing", data)
	}

	// A second connection for a shard held and alive is refused.
	g := dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1, "shard": []int{1, 2}})
	if code := closeCode(g); code != 4008 {
		t.Errorf("a second IDENTIFY of shard 1 closed with %d, want 4008", code)
	}
	// So is a shard out of range.
	g = dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1, "shard": []int{2, 2}})
	if code := closeCode(g); code != 4010 {
		t.Errorf("shard 2 of 2 closed with %d, want 4010", code)
	}
	if r := srv.Refused(); len(r) != 2 || r[0].Shard != 1 || !strings.Contains(r[0].Refused, "connected already") {
		t.Errorf("refused: %+v", r)
	}
}

func TestGatewayIdentifyBuckets(t *testing.T) {
	srv := discordtest.NewServer(t)
	srv.MessageContentAllowed = true
	c := client{t, srv}
	// max_concurrency 1: shard 1 right after shard 0 is too soon.
	identifyShard(dial(t, c), srv.Token, 0, 2)
	g := dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1, "shard": []int{1, 2}})
	if code := closeCode(g); code != 4008 {
		t.Errorf("an IDENTIFY 0 s after another in its bucket closed with %d, want 4008", code)
	}
	if r := srv.Refused(); len(r) != 1 || !strings.Contains(r[0].Refused, "bucket 0") {
		t.Errorf("refused: %+v", r)
	}
	_, body, _ := c.do("GET", "/gateway/bot", nil)
	if left := body.(map[string]any)["session_start_limit"].(map[string]any)["remaining"]; left != 999.0 {
		t.Errorf("remaining %v after one IDENTIFY, want 999", left)
	}
}
