package slacktest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// post calls a Web API method with a form body and decodes the answer.
func post(t *testing.T, s *slacktest.Server, method, token string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func TestWebAPIAuthAndErrors(t *testing.T) {
	s := slacktest.NewServer(t)
	if _, _, b := post(t, s, "auth.test", "", nil); b["error"] != "not_authed" {
		t.Errorf("no token: %v", b)
	}
	if _, _, b := post(t, s, "auth.test", "xoxb-wrong", nil); b["error"] != "invalid_auth" {
		t.Errorf("wrong token: %v", b)
	}
	if _, _, b := post(t, s, "apps.connections.open", s.BotToken, nil); b["error"] != "invalid_auth" {
		t.Errorf("bot token for apps.connections.open: %v", b)
	}
	// The token may also come in the form body.
	if _, _, b := post(t, s, "auth.test", "", url.Values{"token": {s.BotToken}}); b["ok"] != true || b["user_id"] != s.BotUserID {
		t.Errorf("token in body: %v", b)
	}
	if _, _, b := post(t, s, "chat.postMessage", s.BotToken, url.Values{"channel": {"C1"}}); b["error"] != "no_text" {
		t.Errorf("no text: %v", b)
	}
	if _, _, b := post(t, s, "chat.update", s.BotToken, url.Values{"channel": {"C1"}, "ts": {"1.1"}, "text": {"x"}}); b["error"] != "message_not_found" {
		t.Errorf("update of nothing: %v", b)
	}
	if _, _, b := post(t, s, "no.such.method", s.BotToken, nil); b["error"] != "unknown_method" {
		t.Errorf("unknown method: %v", b)
	}
}

func TestRateLimitAndFaults(t *testing.T) {
	s := slacktest.NewServer(t)
	s.RateLimit("chat.postMessage", 2*time.Second)
	s.Fail("chat.postMessage", "not_in_channel")
	form := url.Values{"channel": {"C1"}, "text": {"hi"}}
	status, h, b := post(t, s, "chat.postMessage", s.BotToken, form)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "2" || b["error"] != "ratelimited" {
		t.Errorf("rate limit: %d %q %v", status, h.Get("Retry-After"), b)
	}
	if _, _, b := post(t, s, "chat.postMessage", s.BotToken, form); b["error"] != "not_in_channel" {
		t.Errorf("fault: %v", b)
	}
	_, _, b = post(t, s, "chat.postMessage", s.BotToken, form)
	if b["ok"] != true || len(s.Messages("C1")) != 1 {
		t.Errorf("after the faults: %v", b)
	}
}

func TestDownloadNeedsTheBotToken(t *testing.T) {
	s := slacktest.NewServer(t)
	f := s.AddFile("U1", "a b.png", "image/png", []byte("png bytes"))
	get := func(token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, f.URLPrivateDownload, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Request.URL.Path, string(body)
	}
	if status, _, body := get(s.BotToken); status != http.StatusOK || body != "png bytes" {
		t.Errorf("with the token: %d %q", status, body)
	}
	if _, path, body := get(""); path != "/signin" || !strings.Contains(body, "Sign in") {
		t.Errorf("without the token: landed on %s", path)
	}
}

func TestSign(t *testing.T) {
	// The example from Slack's "Verifying requests from Slack".
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	got := slacktest.Sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body)
	if got != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Errorf("Sign = %s", got)
	}
}
