package discordtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// client talks to the fake as a bot would, over plain HTTP and websocket.
type client struct {
	t   *testing.T
	srv *discordtest.Server
}

// do sends a JSON request (or a prepared *bytes.Buffer with its content
// type) and returns the status, the decoded body and the headers.
func (c client) do(method, path string, body any, contentType ...string) (int, any, http.Header) {
	c.t.Helper()
	var r io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
		ct = ""
	case *bytes.Buffer:
		r, ct = b, contentType[0]
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, c.srv.URL()+"v10"+path, r)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bot "+c.srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func code(v any) float64 {
	m, _ := v.(map[string]any)
	n, _ := m["code"].(float64)
	return n
}

// gateway is a raw websocket connection to the fake's gateway.
type gateway struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, c client) gateway {
	t.Helper()
	_, body, _ := c.do("GET", "/gateway", nil)
	url := body.(map[string]any)["url"].(string)
	conn, _, err := websocket.DefaultDialer.Dial(url+"/?v=10&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	g := gateway{t: t, conn: conn}
	if hello := g.read(); hello["op"] != 10.0 || hello["d"].(map[string]any)["heartbeat_interval"] != 41250.0 {
		t.Fatalf("first payload = %v, want HELLO", hello)
	}
	return g
}

func (g gateway) send(op int, d any) {
	g.t.Helper()
	if err := g.conn.WriteJSON(map[string]any{"op": op, "d": d}); err != nil {
		g.t.Fatal(err)
	}
}

func (g gateway) read() map[string]any {
	g.t.Helper()
	_ = g.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var p map[string]any
	if err := g.conn.ReadJSON(&p); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// next reads until a dispatch of type t and returns it.
func (g gateway) next(t string) map[string]any {
	g.t.Helper()
	for {
		if p := g.read(); p["t"] == t {
			return p
		}
	}
}

func TestGatewayProtocol(t *testing.T) {
	srv := discordtest.NewServer(t)
	c := client{t, srv}

	bad := dial(t, c)
	bad.send(2, map[string]any{"token": "Bot wrong", "intents": 1})
	_ = bad.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := bad.conn.ReadMessage(); !websocket.IsCloseError(err, 4004) {
		t.Errorf("IDENTIFY with a wrong token: %v, want close 4004", err)
	}
	priv := dial(t, c)
	priv.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1 << 15})
	_ = priv.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := priv.conn.ReadMessage(); !websocket.IsCloseError(err, 4014) {
		t.Errorf("IDENTIFY with a disallowed intent: %v, want close 4014", err)
	}

	g := dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1 | 1<<9})
	ready := g.read()
	d := ready["d"].(map[string]any)
	session := d["session_id"].(string)
	if ready["t"] != "READY" || ready["s"] != 1.0 || session == "" || d["resume_gateway_url"] == "" ||
		d["application"].(map[string]any)["id"] != srv.Bot.ID {
		t.Fatalf("READY = %v", ready)
	}
	if gc := g.read(); gc["t"] != "GUILD_CREATE" || gc["d"].(map[string]any)["premium_tier"] != 0.0 {
		t.Errorf("then %v, want GUILD_CREATE", gc)
	}
	g.send(1, 2)
	if ack := g.read(); ack["op"] != 11.0 {
		t.Errorf("heartbeat answered with %v", ack)
	}

	srv.Say(srv.Alice, srv.Channel, "secret plans")
	msg := g.next("MESSAGE_CREATE")
	if msg["d"].(map[string]any)["content"] != "" {
		t.Errorf("without the Message Content intent the content arrived: %v", msg["d"])
	}
	seq := msg["s"].(float64)
	srv.Disconnect()
	missed := srv.Mention(srv.Alice, srv.Channel, "draw it")

	g = dial(t, c)
	g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": session, "seq": seq})
	replay := g.read()
	if replay["t"] != "MESSAGE_CREATE" || replay["s"] != seq+1 || replay["d"].(map[string]any)["id"] != missed.ID ||
		replay["d"].(map[string]any)["content"] != "<@"+srv.Bot.ID+"> draw it" {
		t.Errorf("replayed %v, want the missed mention with its content", replay)
	}
	if resumed := g.read(); resumed["t"] != "RESUMED" {
		t.Errorf("then %v, want RESUMED", resumed)
	}
	if srv.Resumes() != 1 {
		t.Errorf("Resumes = %d", srv.Resumes())
	}
	g = dial(t, c)
	g.send(6, map[string]any{"token": "Bot " + srv.Token, "session_id": "nope", "seq": 1})
	if inv := g.read(); inv["op"] != 9.0 || inv["d"] != false {
		t.Errorf("RESUME of an unknown session = %v, want INVALID_SESSION", inv)
	}
}

func TestMessageRules(t *testing.T) {
	srv := discordtest.NewServer(t)
	c := client{t, srv}
	ch := "/channels/" + srv.Channel + "/messages"

	req, _ := http.NewRequest("GET", srv.URL()+"v10/users/@me", nil)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if st, body, _ := c.do("POST", ch, map[string]any{"content": strings.Repeat("x", 2001)}); st != 400 || code(body) != 50035 {
		t.Errorf("2,001 characters: %d %v", st, body)
	}
	if st, body, _ := c.do("POST", ch, map[string]any{"content": ""}); st != 400 || code(body) != 50006 {
		t.Errorf("empty message: %d %v", st, body)
	}
	longID := map[string]any{"content": "x", "components": []any{map[string]any{"type": 1, "components": []any{
		map[string]any{"type": 2, "style": 2, "label": "Go", "custom_id": strings.Repeat("i", 101)}}}}}
	if st, body, _ := c.do("POST", ch, longID); st != 400 || code(body) != 50035 {
		t.Errorf("101-character custom_id: %d %v", st, body)
	}

	st, body, _ := c.do("POST", ch, map[string]any{"content": "hello"})
	if st != 200 {
		t.Fatalf("post: %d %v", st, body)
	}
	id := body.(map[string]any)["id"].(string)
	thread := map[string]any{"name": "a thread", "auto_archive_duration": 1440}
	if st, body, _ := c.do("POST", ch+"/"+id+"/threads", thread); st != 201 || body.(map[string]any)["id"] != id {
		t.Errorf("thread from message: %d %v, want a thread with the message's id", st, body)
	}
	if st, body, _ := c.do("POST", ch+"/"+id+"/threads", thread); st != 400 || code(body) != 160004 {
		t.Errorf("second thread on a message: %d %v", st, body)
	}

	// Multipart: payload_json and files[n]; the file is served by the CDN.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {`form-data; name="payload_json"`}})
	p.Write([]byte(`{"content":"a file"}`))
	f, _ := mw.CreateFormFile("files[0]", "note.txt")
	f.Write([]byte("file body"))
	mw.Close()
	st, body, _ = c.do("POST", ch, &buf, mw.FormDataContentType())
	atts := body.(map[string]any)["attachments"].([]any)
	if st != 200 || len(atts) != 1 {
		t.Fatalf("multipart post: %d %v", st, body)
	}
	resp, err := http.Get(atts[0].(map[string]any)["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "file body" {
		t.Errorf("CDN served %q", got)
	}

	buf.Reset()
	mw = multipart.NewWriter(&buf)
	f, _ = mw.CreateFormFile("files[0]", "big.bin")
	f.Write(make([]byte, 10<<20+1))
	mw.Close()
	if st, body, _ := c.do("POST", ch, &buf, mw.FormDataContentType()); st != 413 || code(body) != 40005 {
		t.Errorf("upload over 10 MiB: %d %v", st, body)
	}

	srv.RateLimit("POST /channels/{channel_id}/messages", 1500*time.Millisecond, false)
	st, body, h := c.do("POST", ch, map[string]any{"content": "again"})
	if st != 429 || body.(map[string]any)["retry_after"] != 1.5 || h.Get("Retry-After") != "2" ||
		h.Get("X-RateLimit-Reset-After") != "1.500" || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("rate limited: %d %v %v", st, body, h)
	}
}

func TestInteractionRules(t *testing.T) {
	srv := discordtest.NewServer(t)
	c := client{t, srv}
	cmd := map[string]any{"name": "imagine", "description": "Make an image", "options": []any{
		map[string]any{"type": 3, "name": "prompt", "description": "What to draw", "required": true}}}
	if st, body, _ := c.do("PUT", "/applications/"+srv.Bot.ID+"/commands", []any{cmd}); st != 200 || len(body.([]any)) != 1 {
		t.Fatalf("bulk overwrite: %d %v", st, body)
	}
	bad := map[string]any{"name": "Imagine!", "description": "x"}
	if st, body, _ := c.do("POST", "/applications/"+srv.Bot.ID+"/commands", bad); st != 400 || code(body) != 50035 {
		t.Errorf("bad command name: %d %v", st, body)
	}

	g := dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1})
	g.next("READY")
	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a fox"})
	if d := g.next("INTERACTION_CREATE")["d"].(map[string]any); d["token"] != ic.Token ||
		d["member"].(map[string]any)["user"].(map[string]any)["id"] != srv.Alice.ID {
		t.Errorf("INTERACTION_CREATE = %v", d)
	}

	callback := "/interactions/" + ic.ID + "/" + ic.Token + "/callback"
	if st, body, _ := c.do("POST", callback, map[string]any{"type": 5}); st != 204 {
		t.Fatalf("deferred answer: %d %v", st, body)
	}
	if st, body, _ := c.do("POST", callback, map[string]any{"type": 5}); st != 400 || code(body) != 40060 {
		t.Errorf("second answer: %d %v", st, body)
	}
	original := "/webhooks/" + srv.Bot.ID + "/" + ic.Token + "/messages/@original"
	if st, body, _ := c.do("PATCH", original, map[string]any{"content": "done"}); st != 200 || body.(map[string]any)["content"] != "done" {
		t.Errorf("edit @original: %d %v", st, body)
	}
	st, body, _ := c.do("POST", "/webhooks/"+srv.Bot.ID+"/"+ic.Token+"?wait=true", map[string]any{"content": "psst", "flags": 64})
	if st != 200 || body.(map[string]any)["flags"] != 64.0 {
		t.Errorf("ephemeral follow-up: %d %v", st, body)
	}
	if got := srv.GetInteraction(ic.ID); got.AckType != 5 || got.AckLatency() <= 0 || len(got.Followups) != 1 {
		t.Errorf("interaction = %+v", got)
	}

	srv.ExpireTokens()
	if st, body, _ := c.do("PATCH", original, map[string]any{"content": "late"}); st != 401 || code(body) != 50027 {
		t.Errorf("edit with an expired token: %d %v", st, body)
	}
}
