package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// loopbackOnly is an HTTP client that dials loopback addresses only, so a
// fuzzed file or response URL on one of Slack's real hosts (which the bot
// trusts) never leaves the machine.
func loopbackOnly() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, errors.New("fuzz: only loopback addresses may be dialled")
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// fuzzBot returns a harness in http mode whose bot dials loopback only,
// once the bot serves requests (so its workers run).
func fuzzBot(f *testing.F) *harness {
	h := newHarness(f, options{http: true, cfg: func(c *Config) { c.HTTPClient = loopbackOnly() }})
	if status, _ := h.fake.PostHTTP(f, h.url, slacktest.URLVerification("ready"), slacktest.Signing{}); status != http.StatusOK {
		f.Fatalf("the bot answered %d", status)
	}
	return h
}

// signedPost serves a POST of body to path on h's bot, signed now with the
// signing secret as Slack signs it, and returns the status.
func signedPost(h *harness, path, contentType string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", slacktest.Sign(h.fake.SigningSecret, stamp, body))
	rec := httptest.NewRecorder()
	h.bot.handler().ServeHTTP(rec, req)
	return rec.Code
}

// form encodes a delivery's JSON object of strings as Slack posts a slash
// command.
func form(t testing.TB, env slacktest.Envelope) []byte {
	var fields map[string]string
	if err := json.Unmarshal(env.Payload, &fields); err != nil {
		t.Fatal(err)
	}
	v := url.Values{}
	for k, s := range fields {
		v.Set(k, s)
	}
	return []byte(v.Encode())
}

// FuzzSlashCommandPayload posts signed form bodies to /slack/commands:
// parsing them must never panic, and the answer is 200 (queued or dropped)
// or 400 (not a form), never a server error.
func FuzzSlashCommandPayload(f *testing.F) {
	h := fuzzBot(f)
	f.Add(form(f, h.fake.SlashCommand(ana, "C1", "a red fox --ar 16:9")))
	f.Add(form(f, h.fake.SlashCommand(bob, "D1", "")))
	f.Add([]byte("command=%2Fimagine&text=%ZZ"))
	f.Add([]byte("command=/imagine&text=a&text=b&user_id=&channel_id=&response_url=https%3A%2F%2Fhooks.slack.com%2Fx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		switch status := signedPost(h, "/slack/commands", "application/x-www-form-urlencoded", body); status {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d", status)
		}
	})
}

// FuzzInteractionPayload posts signed payload= forms of interaction JSON to
// /slack/interactivity: never a panic, and 200 or 400.
func FuzzInteractionPayload(f *testing.F) {
	h := fuzzBot(f)
	f.Add(`{"type":"block_actions","trigger_id":"1.2.3","team":{"id":"T0FAKE"},"user":{"id":"UANA","name":"ana"},` +
		`"channel":{"id":"C1"},"container":{"type":"message","channel_id":"C1","message_ts":"1.000002","thread_ts":"1.000001"},` +
		`"message":{"ts":"1.000002","thread_ts":"1.000001"},` +
		`"actions":[{"type":"button","block_id":"easel_v1","action_id":"regenerate","value":"S1:1","action_ts":"1.5"}]}`)
	f.Add(`{"type":"block_actions","user":{"id":"UBOB"},"actions":[{"block_id":"b","action_id":"undo","value":":0"},null,{"action_id":"x"}]}`)
	f.Add(`{"type":"view_submission","view":{"id":"V1"}}`)
	f.Add(`{"type":"block_actions","actions":{"not":"a list"}}`)
	f.Fuzz(func(t *testing.T, payload string) {
		body := []byte(url.Values{"payload": {payload}}.Encode())
		switch status := signedPost(h, "/slack/interactivity", "application/x-www-form-urlencoded", body); status {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d", status)
		}
	})
}

// FuzzEventsPayload posts signed Events API bodies to /slack/events: never a
// panic, and always 200 (Slack would retry anything else), with the
// url_verification challenge echoed only as JSON.
func FuzzEventsPayload(f *testing.F) {
	h := fuzzBot(f)
	logo := h.fake.AddFile(ana, "../../logo.png", "image/png", testPNG(1))
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> a fox", Files: []slacktest.File{logo}})
	_, dm := h.fake.Post(slacktest.Post{Channel: "D1", ChannelType: "im", User: bob, Text: "a cat"})
	for _, env := range append(envs, dm...) {
		f.Add([]byte(env.Payload))
	}
	f.Add([]byte(slacktest.URLVerification("<script>alert(1)</script>").Payload))
	f.Add([]byte(`{"type":"event_callback","event_id":"Ev1","event":{"type":"message","subtype":"message_changed","message":null}}`))
	f.Add([]byte(`{"type":"event_callback","event":null}`))
	f.Add([]byte(`{"type":"app_rate_limited"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		switch status := signedPost(h, "/slack/events", "application/json", body); status {
		case http.StatusOK, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("answered %d", status)
		}
	})
}

// FuzzSignature sends bodies with fuzzed timestamps and signatures, and
// with valid signatures over bodies changed after signing, through the
// verified middleware: it must pass on exactly the requests signed with the
// secret within five minutes, over the very bytes received, and never panic
// on odd headers.
func FuzzSignature(f *testing.F) {
	// verified needs nothing of a bot but its secret: no engine, no event
	// log and no Slack behind it, so every input runs the same code.
	const secret = "fuzz-signing-secret"
	b, err := New(Config{BotToken: "xoxb-fuzz", SigningSecret: secret, Mode: "http"}, struct{ Engine }{}, struct{ inbox.Store }{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"type":"event_callback"}`), int64(0), "", "", uint16(0))        // valid
	f.Add([]byte(`{"type":"event_callback"}`), int64(0), "", "", uint16(0x0101))   // body changed after signing
	f.Add([]byte("command=%2Fimagine"), int64(301), "", "", uint16(0))             // too old
	f.Add([]byte("command=%2Fimagine"), int64(-301), "", "", uint16(0))            // from the future
	f.Add([]byte("x"), int64(0), "junk", "", uint16(0))                            // odd timestamp
	f.Add([]byte("x"), int64(0), "", "v0=00", uint16(0))                           // short signature
	f.Add([]byte("x"), int64(0), "", "v1=not hex at all\x00", uint16(0))           // odd signature
	f.Add([]byte(""), int64(-1<<62), "", "", uint16(0))                            // absurd timestamp
	f.Add([]byte("x"), int64(0), "", slacktest.Sign("wrong", "0", nil), uint16(0)) // another secret
	f.Fuzz(func(t *testing.T, body []byte, age int64, stampSuffix, signature string, flip uint16) {
		now := time.Now().Unix()
		stamp := strconv.FormatInt(now-age, 10) + stampSuffix
		if signature == "" {
			signature = slacktest.Sign(secret, stamp, body)
		}
		sent := bytes.Clone(body)
		if flip != 0 && len(sent) > 0 {
			sent[int(flip)%len(sent)] ^= byte(flip>>8) | 1 // changed after signing
		}
		req := httptest.NewRequest(http.MethodPost, "/slack/events", bytes.NewReader(sent))
		req.Header["X-Slack-Request-Timestamp"] = []string{stamp}
		req.Header["X-Slack-Signature"] = []string{signature}
		var got []byte
		passed := false
		rec := httptest.NewRecorder()
		b.verified(func(w http.ResponseWriter, _ *http.Request, body []byte) {
			passed, got = true, body
			w.WriteHeader(http.StatusOK)
		}).ServeHTTP(rec, req)

		// Whether it was sent within five minutes, as of before and after
		// the check: only a margin either side of the limit is undecided.
		genuine := hmac.Equal([]byte(signature), []byte(slacktest.Sign(secret, stamp, sent)))
		ts, err := strconv.ParseInt(stamp, 10, 64)
		skew := time.Duration(1<<63 - 1)
		if d := now - ts; err == nil && d > -1<<32 && d < 1<<32 {
			skew = time.Duration(max(d, -d)) * time.Second
		}
		switch {
		case passed && (!genuine || skew > 5*time.Minute+10*time.Second):
			t.Fatalf("passed a request signed %q at %q (genuine %v, %s off)", signature, stamp, genuine, skew)
		case passed && !bytes.Equal(got, sent):
			t.Fatal("passed on other bytes than were received")
		case !passed && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("refused with %d", rec.Code)
		case !passed && genuine && skew < 5*time.Minute-10*time.Second && len(sent) <= MaxRequestBody:
			t.Fatalf("refused a genuine request sent %s off", skew)
		}
	})
}
