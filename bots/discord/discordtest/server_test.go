package discordtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
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

// easelCommand is a command with subcommand groups and an autocomplete
// option, as Easel registers /easel.
func easelCommand() map[string]any {
	str := func(name string, extra map[string]any) map[string]any {
		o := map[string]any{"type": 3, "name": name, "description": "a " + name}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	return map[string]any{"name": "easel", "description": "Manage Easel", "options": []any{
		map[string]any{"type": 2, "name": "style", "description": "Styles", "options": []any{
			map[string]any{"type": 1, "name": "set", "description": "Set one", "options": []any{
				str("name", map[string]any{"required": true, "max_length": 32}),
				str("definition", map[string]any{"required": true}),
				map[string]any{"type": 11, "name": "reference", "description": "An image"}}},
			map[string]any{"type": 1, "name": "delete", "description": "Delete one", "options": []any{
				str("name", map[string]any{"required": true, "autocomplete": true, "max_length": 32})}},
			map[string]any{"type": 1, "name": "list", "description": "List them"}}},
		map[string]any{"type": 1, "name": "ping", "description": "A subcommand beside the group", "options": []any{
			str("scope", map[string]any{"choices": []any{map[string]any{"name": "channel", "value": "channel"}}})}},
	}}
}

func TestCommandRules(t *testing.T) {
	srv := discordtest.NewServer(t)
	c := client{t, srv}
	create := "/applications/" + srv.Bot.ID + "/guilds/" + srv.Guild + "/commands"
	if st, body, _ := c.do("POST", create, easelCommand()); st != 201 {
		t.Fatalf("a command with a subcommand group: %d %v", st, body)
	}
	sub := func(opts ...any) map[string]any {
		return map[string]any{"type": 1, "name": "go", "description": "Go", "options": opts}
	}
	for name, opts := range map[string][]any{
		"a group in a subcommand": {map[string]any{"type": 1, "name": "go", "description": "Go", "options": []any{
			map[string]any{"type": 2, "name": "deep", "description": "Too deep", "options": []any{sub()}}}}},
		"a value option in a group": {map[string]any{"type": 2, "name": "g", "description": "Group", "options": []any{
			map[string]any{"type": 3, "name": "x", "description": "x"}}}},
		"an empty group":                     {map[string]any{"type": 2, "name": "g", "description": "Group"}},
		"a subcommand beside a value option": {sub(), map[string]any{"type": 3, "name": "x", "description": "x"}},
		"autocomplete with choices": {sub(map[string]any{"type": 3, "name": "x", "description": "x", "autocomplete": true,
			"choices": []any{map[string]any{"name": "a", "value": "a"}}})},
		"autocomplete on an attachment": {sub(map[string]any{"type": 11, "name": "x", "description": "x", "autocomplete": true})},
		"max_length 6001":               {sub(map[string]any{"type": 3, "name": "x", "description": "x", "max_length": 6001})},
		"max_length 0":                  {sub(map[string]any{"type": 3, "name": "x", "description": "x", "max_length": 0})},
		"a 101-character choice value": {sub(map[string]any{"type": 3, "name": "x", "description": "x",
			"choices": []any{map[string]any{"name": "a", "value": strings.Repeat("v", 101)}}})},
		"two options of one name": {sub(map[string]any{"type": 3, "name": "x", "description": "x"},
			map[string]any{"type": 3, "name": "x", "description": "x"})},
	} {
		cmd := map[string]any{"name": "bad", "description": "Bad", "options": opts}
		if st, body, _ := c.do("POST", create, cmd); st != 400 || code(body) != 50035 {
			t.Errorf("%s: %d %v, want 400 50035", name, st, body)
		}
	}

	g := dial(t, c)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1})
	g.next("READY")
	ic := srv.Command(t, srv.Alice, srv.Channel, "easel style set",
		discordtest.Option{Name: "name", Value: "brand"}, discordtest.Option{Name: "definition", Value: "flat art"})
	d := g.next("INTERACTION_CREATE")["d"].(map[string]any)
	group := d["data"].(map[string]any)["options"].([]any)[0].(map[string]any)
	set := group["options"].([]any)[0].(map[string]any)
	values := set["options"].([]any)
	if d["type"] != 2.0 || group["name"] != "style" || group["type"] != 2.0 || set["name"] != "set" || set["type"] != 1.0 ||
		len(values) != 2 || values[0].(map[string]any)["value"] != "brand" {
		t.Errorf("INTERACTION_CREATE of /easel style set = %v", d)
	}
	if ic.Type != discordtest.InteractionCommand {
		t.Errorf("interaction type %d", ic.Type)
	}

	ac := srv.Autocomplete(t, srv.Alice, srv.Channel, "easel style delete", "name", discordtest.Option{Name: "name", Value: "br"})
	d = g.next("INTERACTION_CREATE")["d"].(map[string]any)
	focused := d["data"].(map[string]any)["options"].([]any)[0].(map[string]any)["options"].([]any)[0].(map[string]any)["options"].([]any)[0].(map[string]any)
	if d["type"] != 4.0 || focused["focused"] != true || focused["value"] != "br" {
		t.Errorf("INTERACTION_CREATE of an autocomplete = %v", d)
	}
	callback := "/interactions/" + ac.ID + "/" + ac.Token + "/callback"
	choice := func(name string, value any) map[string]any { return map[string]any{"name": name, "value": value} }
	many := []any{}
	for range 26 {
		many = append(many, choice("brand", "brand"))
	}
	for name, body := range map[string]map[string]any{
		"a deferred message":    {"type": 5},
		"26 choices":            {"type": 8, "data": map[string]any{"choices": many}},
		"a 101-character name":  {"type": 8, "data": map[string]any{"choices": []any{choice(strings.Repeat("n", 101), "x")}}},
		"an empty name":         {"type": 8, "data": map[string]any{"choices": []any{choice("", "x")}}},
		"a number for a string": {"type": 8, "data": map[string]any{"choices": []any{choice("one", 1)}}},
		"a 101-character value": {"type": 8, "data": map[string]any{"choices": []any{choice("long", strings.Repeat("v", 101))}}},
	} {
		if st, resp, _ := c.do("POST", callback, body); st != 400 || code(resp) != 50035 {
			t.Errorf("autocomplete answered with %s: %d %v, want 400 50035", name, st, resp)
		}
	}
	if st, resp, _ := c.do("POST", callback, map[string]any{"type": 8, "data": map[string]any{"choices": []any{choice("brand", "brand")}}}); st != 204 {
		t.Fatalf("autocomplete result: %d %v", st, resp)
	}
	if got := srv.GetInteraction(ac.ID); got.AckType != 8 || len(got.Choices) != 1 || got.Choices[0].Value != "brand" {
		t.Errorf("answered autocomplete = %+v", got)
	}
	if st, resp, _ := c.do("POST", "/webhooks/"+srv.Bot.ID+"/"+ac.Token+"?wait=true", map[string]any{"content": "hi"}); st != 404 || code(resp) != 10015 {
		t.Errorf("a follow-up to an autocomplete: %d %v, want 404 10015", st, resp)
	}
	if st, resp, _ := c.do("POST", "/interactions/"+ic.ID+"/"+ic.Token+"/callback", map[string]any{"type": 8, "data": map[string]any{}}); st != 400 || code(resp) != 50035 {
		t.Errorf("a command answered with an autocomplete result: %d %v, want 400 50035", st, resp)
	}
}

func TestCategoriesAndPings(t *testing.T) {
	srv := discordtest.NewServer(t)
	c := client{t, srv}
	g := dial(t, c)
	cat := srv.AddCategory(srv.Guild, "art")
	art := srv.AddChannel(srv.Guild, "posters", cat)
	g.send(2, map[string]any{"token": "Bot " + srv.Token, "intents": 1 | 1<<9})
	gc := g.next("GUILD_CREATE")["d"].(map[string]any)
	parents := map[string]any{}
	for _, ch := range gc["channels"].([]any) {
		ch := ch.(map[string]any)
		parents[ch["id"].(string)] = ch["parent_id"]
	}
	if parents[art] != cat || parents[srv.Channel] != nil || len(parents) != 3 {
		t.Errorf("GUILD_CREATE channels' parents = %v, want %s in %s", parents, art, cat)
	}
	late := srv.AddChannel(srv.Guild, "late", cat)
	if created := g.next("CHANNEL_CREATE")["d"].(map[string]any); created["id"] != late || created["parent_id"] != cat {
		t.Errorf("CHANNEL_CREATE = %v", created)
	}
	if st, body, _ := c.do("POST", "/channels/"+cat+"/messages", map[string]any{"content": "hi"}); st != 400 || code(body) != 50008 {
		t.Errorf("a message in a category: %d %v, want 400 50008", st, body)
	}

	text := "@everyone see <@&42> and <@" + srv.Alice.ID + ">"
	for _, tc := range []struct {
		name    string
		allowed any
		want    []string
	}{
		{"no allowed_mentions", nil, []string{"@everyone", "role:42", "user:" + srv.Alice.ID}},
		{"none allowed", map[string]any{}, nil},
		{"only alice", map[string]any{"users": []any{srv.Alice.ID}}, []string{"user:" + srv.Alice.ID}},
		{"parse everyone", map[string]any{"parse": []any{"everyone"}}, []string{"@everyone"}},
	} {
		body := map[string]any{"content": text}
		if tc.allowed != nil {
			body["allowed_mentions"] = tc.allowed
		}
		st, resp, _ := c.do("POST", "/channels/"+srv.Channel+"/messages", body)
		if st != 200 {
			t.Fatalf("%s: %d %v", tc.name, st, resp)
		}
		m, _ := srv.GetMessage(resp.(map[string]any)["id"].(string))
		if !slices.Equal(m.Pings, tc.want) {
			t.Errorf("%s: pings %q, want %q", tc.name, m.Pings, tc.want)
		}
	}
	bad := map[string]any{"content": text, "allowed_mentions": map[string]any{"parse": []any{"users"}, "users": []any{srv.Alice.ID}}}
	if st, body, _ := c.do("POST", "/channels/"+srv.Channel+"/messages", bad); st != 400 || code(body) != 50035 {
		t.Errorf("users both parsed and listed: %d %v, want 400 50035", st, body)
	}
}
