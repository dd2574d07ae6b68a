package slack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack/slacktest"
)

func TestHTTPModeURLVerification(t *testing.T) {
	h := newHarness(t, options{http: true})
	status, body := h.fake.PostHTTP(t, h.url, slacktest.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), slacktest.Signing{})
	var got struct{ Challenge string }
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil || got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("challenge answered %d %q", status, body)
	}
}

func TestHTTPModeFlows(t *testing.T) {
	h := newHarness(t, options{http: true})
	start := time.Now()
	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.SlashCommand(ana, "C1", "a fox"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("command answered %d", status)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("command answered after %s", d)
	}
	root := h.root(ana, "C1", "a fox")
	h.images(1)
	b1, _ := h.buttons("C1", root, 1)

	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "make it blue", ThreadTS: root})
	for _, env := range envs {
		if status, _ := h.fake.PostHTTP(t, h.url, env, slacktest.Signing{}); status != http.StatusOK {
			t.Fatalf("event answered %d", status)
		}
	}
	h.images(2)
	// Slack retries an event it thinks timed out: same event id, one job.
	retry := envs[0]
	retry.RetryAttempt = 1
	h.fake.PostHTTP(t, h.url, retry, slacktest.Signing{})

	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.Click(t, ana, "C1", b1, "regenerate"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("interaction answered %d", status)
	}
	h.images(3)
	h.settle()
	if n := len(h.gen.Requests()); n != 3 {
		t.Errorf("%d provider calls, want 3", n)
	}
}

func TestHTTPModeRejectsBadSignatures(t *testing.T) {
	h := newHarness(t, options{http: true})
	_, envs := h.fake.Post(slacktest.Post{Channel: "C1", User: ana, Text: "<@" + h.fake.BotUserID + "> a fox"})
	deliveries := append(envs, h.fake.SlashCommand(ana, "C1", "a fox"), slacktest.URLVerification("x"))
	bad := map[string]slacktest.Signing{
		"wrong secret": {Secret: "not-the-secret"},
		"unsigned":     {Unsigned: true},
		"expired":      {Timestamp: time.Now().Add(-6 * time.Minute)},
		"future":       {Timestamp: time.Now().Add(6 * time.Minute)},
	}
	for name, sig := range bad {
		for _, env := range deliveries {
			if status, _ := h.fake.PostHTTP(t, h.url, env, sig); status != http.StatusUnauthorized {
				t.Errorf("%s %s: answered %d, want 401", name, env.Type, status)
			}
		}
	}
	if n := h.engine.handles.Load() + h.engine.sessions.Load() + h.log.marks.Load(); n != 0 {
		t.Errorf("%d calls reached the engine or the event log", n)
	}
	if calls := h.fake.Calls(""); len(calls) != 1 || calls[0].Method != "auth.test" {
		t.Errorf("Web API calls after rejected requests: %d", len(calls))
	}
}

func TestHTTPModeCapsTheBody(t *testing.T) {
	h := newHarness(t, options{http: true})
	env := h.fake.Event(map[string]any{"type": "message", "text": string(make([]byte, MaxRequestBody))})
	if status, _ := h.fake.PostHTTP(t, h.url, env, slacktest.Signing{}); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body answered %d", status)
	}
}

// readCounter is a request body that records how much of it was read.
type readCounter struct {
	io.Reader
	n atomic.Int64
}

func (r *readCounter) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// forged returns signature headers of the right form and a fresh
// timestamp, as anyone can make without the signing secret.
func forged() map[string]string {
	return map[string]string{
		"X-Slack-Request-Timestamp": strconv.FormatInt(time.Now().Unix(), 10),
		"X-Slack-Signature":         "v0=" + strings.Repeat("5e", 32),
	}
}

// httpBot returns a bot in http mode that serves nothing yet, for calling
// its handler directly.
func httpBot(t *testing.T) *Bot {
	t.Helper()
	b, err := New(Config{BotToken: "xoxb-test", SigningSecret: "test-secret", Mode: "http"}, struct{ Engine }{}, struct{ inbox.Store }{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPModeReadsNoBodyWithoutValidHeaders(t *testing.T) {
	b := httpBot(t)
	now := time.Now()
	stamp := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	good := "v0=" + strings.Repeat("ab", 32)
	cases := map[string]struct {
		headers  map[string]string
		declared int64
		want     int
	}{
		"unsigned":                 {nil, 1000, http.StatusUnauthorized},
		"no timestamp":             {map[string]string{"X-Slack-Signature": good}, 1000, http.StatusUnauthorized},
		"no signature":             {map[string]string{"X-Slack-Request-Timestamp": stamp(0)}, 1000, http.StatusUnauthorized},
		"not v0":                   {map[string]string{"X-Slack-Request-Timestamp": stamp(0), "X-Slack-Signature": "v1=" + strings.Repeat("ab", 32)}, 1000, http.StatusUnauthorized},
		"short signature":          {map[string]string{"X-Slack-Request-Timestamp": stamp(0), "X-Slack-Signature": "v0=abcd"}, 1000, http.StatusUnauthorized},
		"long signature":           {map[string]string{"X-Slack-Request-Timestamp": stamp(0), "X-Slack-Signature": good + "ab"}, 1000, http.StatusUnauthorized},
		"not hex":                  {map[string]string{"X-Slack-Request-Timestamp": stamp(0), "X-Slack-Signature": "v0=" + strings.Repeat("zz", 32)}, 1000, http.StatusUnauthorized},
		"timestamp not a number":   {map[string]string{"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": good}, 1000, http.StatusUnauthorized},
		"stale":                    {map[string]string{"X-Slack-Request-Timestamp": stamp(-6 * time.Minute), "X-Slack-Signature": good}, 1000, http.StatusUnauthorized},
		"from the future":          {map[string]string{"X-Slack-Request-Timestamp": stamp(6 * time.Minute), "X-Slack-Signature": good}, 1000, http.StatusUnauthorized},
		"forged, declared too big": {forged(), MaxRequestBody + 1, http.StatusRequestEntityTooLarge},
	}
	for name, c := range cases {
		body := &readCounter{Reader: strings.NewReader(strings.Repeat("x", int(c.declared)))}
		req := httptest.NewRequest(http.MethodPost, "/slack/events", body)
		req.ContentLength = c.declared
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		b.handler().ServeHTTP(rec, req)
		if rec.Code != c.want || body.n.Load() != 0 {
			t.Errorf("%s: answered %d after reading %d bytes of the body; want %d before reading any", name, rec.Code, body.n.Load(), c.want)
		}
		if rec.Header().Get("Connection") != "close" {
			t.Errorf("%s: the connection is kept, so the server would read the body itself", name)
		}
	}
}

// state returns the bytes held in bb and the number of reads in progress.
func (bb *bodyBudget) state() (used int64, reading int) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	return bb.used, len(bb.reading)
}

// rawConn is a connection to the bot in http mode, written by hand.
type rawConn struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

// rawPost opens a connection to the bot at base and writes a POST to path
// with headers, declaring a body of declared bytes but sending only the
// first sent of them.
func rawPost(t testing.TB, base, path string, headers map[string]string, declared, sent int) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: easel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, declared)
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(bytes.Repeat([]byte{'{'}, sent)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, Conn: conn, r: bufio.NewReader(conn)}
}

// response reads the answer to c's request, within 10 seconds.
func (c *rawConn) response() *http.Response {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.t.Fatalf("no answer: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		c.t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// closed reports whether the bot closed c (after its answer, if any).
func (c *rawConn) closed() bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	return errors.Is(err, io.EOF)
}

func TestHTTPModeRefusesBeforeTheBodyArrives(t *testing.T) {
	h := newHarness(t, options{http: true})
	// Under 256 KB, a body nobody read would be read by the server itself
	// before answering, unless the connection is closed.
	unsigned := rawPost(t, h.url, "/slack/events", nil, 100_000, 0)
	if resp := unsigned.response(); resp.StatusCode != http.StatusUnauthorized || !resp.Close || !unsigned.closed() {
		t.Errorf("unsigned: answered %d (close %v); want 401 and the connection closed", resp.StatusCode, resp.Close)
	}
	big := rawPost(t, h.url, "/slack/events", forged(), MaxRequestBody+1, 0)
	if resp := big.response(); resp.StatusCode != http.StatusRequestEntityTooLarge || !big.closed() {
		t.Errorf("declared too big: answered %d; want 413 and the connection closed", resp.StatusCode)
	}
}

func TestHTTPModeCutsABodyThatDoesNotArrive(t *testing.T) {
	h := newHarness(t, options{http: true})
	c := rawPost(t, h.url, "/slack/events", forged(), 1000, 999)
	if resp := c.response(); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a body missing its last byte answered %d, want 408 after %s", resp.StatusCode, bodyTimeout)
	}
	if used, reading := h.bot.bodies.state(); used != 0 || reading != 0 {
		t.Errorf("the budget still holds %d bytes for %d reads", used, reading)
	}
}

// TestHTTPModeHeldBodiesCannotStarveSignedRequests fills the body budget
// with requests whose headers look right but whose bodies never finish, as
// anyone can send without the secret, then sends a genuine request: it cuts
// the oldest held read short and is answered.
func TestHTTPModeHeldBodiesCannotStarveSignedRequests(t *testing.T) {
	// Held reads end by being cut short, never by their deadline.
	h := newHarness(t, options{http: true, bot: func(b *Bot) { b.bodyTimeout = time.Hour }})
	const largest = MaxRequestBody + requestCost
	var sizes []int // the largest bodies, and one to fill what they leave
	for range bodyBudgetBytes / largest {
		sizes = append(sizes, MaxRequestBody)
	}
	if rest := bodyBudgetBytes%largest - requestCost; rest > 0 {
		sizes = append(sizes, rest)
	}
	held := make([]*rawConn, len(sizes))
	for i, size := range sizes {
		held[i] = rawPost(t, h.url, "/slack/events", forged(), size, size-1)
		h.fake.WaitFor(t, "the body to be held", func() bool { _, n := h.bot.bodies.state(); return n == i+1 })
	}
	if used, _ := h.bot.bodies.state(); used != bodyBudgetBytes {
		t.Fatalf("held bodies take %d bytes of %d", used, bodyBudgetBytes)
	}
	fits := len(sizes)

	if status, _ := h.fake.PostHTTP(t, h.url, h.fake.SlashCommand(ana, "C1", "a fox"), slacktest.Signing{}); status != http.StatusOK {
		t.Fatalf("a signed command answered %d while the budget was full", status)
	}
	h.root(ana, "C1", "a fox")
	if resp := held[0].response(); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("the oldest held body answered %d, want 408", resp.StatusCode)
	}
	// The genuine request is done: a held body fits again in the room it
	// made, and the next one cuts the next oldest short.
	held = held[1:]
	h.fake.WaitFor(t, "the signed request to let go", func() bool { _, n := h.bot.bodies.state(); return n == fits-1 })
	held = append(held, rawPost(t, h.url, "/slack/events", forged(), MaxRequestBody, MaxRequestBody-1))
	h.fake.WaitFor(t, "the budget to fill again", func() bool { _, n := h.bot.bodies.state(); return n == fits })
	held = append(held, rawPost(t, h.url, "/slack/events", forged(), MaxRequestBody, MaxRequestBody-1))
	if resp := held[0].response(); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("the next oldest held body answered %d, want 408", resp.StatusCode)
	}
	h.fake.WaitFor(t, "the newcomer to be held", func() bool { _, n := h.bot.bodies.state(); return n == fits })
	if used, _ := h.bot.bodies.state(); used > bodyBudgetBytes {
		t.Errorf("%d bytes held, over the budget of %d", used, bodyBudgetBytes)
	}
}

func TestHTTPModeCapsChunkedBodies(t *testing.T) {
	h := newHarness(t, options{http: true})
	send := func(body []byte, headers map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, h.url+"/slack/commands", io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(make([]byte, MaxRequestBody+1), forged()); status != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized chunked body answered %d, want 413", status)
	}
	var fields map[string]string
	if err := json.Unmarshal(h.fake.SlashCommand(ana, "C1", "a chunked fox").Payload, &fields); err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	body := []byte(form.Encode())
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	signed := map[string]string{"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": slacktest.Sign(h.fake.SigningSecret, stamp, body)}
	if status := send(body, signed); status != http.StatusOK {
		t.Errorf("a signed chunked command answered %d", status)
	}
	h.root(ana, "C1", "a chunked fox")
}

func TestHTTPModeCapsTheHeaders(t *testing.T) {
	h := newHarness(t, options{http: true})
	c := rawPost(t, h.url, "/slack/events", map[string]string{"X-Padding": strings.Repeat("a", 2*maxHeaderBytes)}, 10, 10)
	if resp := c.response(); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("%d KiB of headers answered %d, want 431", 2*maxHeaderBytes>>10, resp.StatusCode)
	}
}
