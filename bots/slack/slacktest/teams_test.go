package slacktest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// authorize visits the fake's authorize page and returns where it sends
// the browser back.
func authorize(t *testing.T, s *slacktest.Server, q url.Values) (int, url.Values) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc.Query()
}

func TestOAuthAndTeams(t *testing.T) {
	s := slacktest.NewServer(t)
	s.AddTeam(slacktest.Team{ID: "T2"})
	s.AddChannel("C2", "T2")
	q := url.Values{"client_id": {s.ClientID}, "scope": {"chat:write,commands"}, "redirect_uri": {"https://easel.test/slack/oauth_redirect"}, "state": {"st"}}

	if status, _ := authorize(t, s, q); status != http.StatusBadRequest {
		t.Errorf("nobody approving: status %d", status)
	}
	s.Approve(slacktest.Approval{Deny: true})
	if _, back := authorize(t, s, q); back.Get("error") != "access_denied" || back.Get("state") != "st" || back.Get("code") != "" {
		t.Errorf("denied: back with %v", back)
	}
	bad := url.Values{"client_id": {"other"}, "scope": q["scope"], "redirect_uri": q["redirect_uri"]}
	s.Approve(slacktest.Approval{Team: "T2", User: "U9"})
	if status, _ := authorize(t, s, bad); status != http.StatusBadRequest {
		t.Errorf("unknown client id: status %d", status)
	}
	_, back := authorize(t, s, q)
	code := back.Get("code")
	if code == "" || back.Get("state") != "st" {
		t.Fatalf("approved: back with %v", back)
	}
	exchange := func(secret, redirect string) map[string]any {
		_, _, b := post(t, s, "oauth.v2.access", "", url.Values{"client_id": {s.ClientID}, "client_secret": {secret}, "code": {code}, "redirect_uri": {redirect}})
		return b
	}
	if b := exchange("wrong", q.Get("redirect_uri")); b["error"] != "bad_client_secret" {
		t.Errorf("wrong secret: %v", b)
	}
	b := exchange(s.ClientSecret, q.Get("redirect_uri"))
	token, _ := b["access_token"].(string)
	if b["ok"] != true || !strings.HasPrefix(token, "xoxb-") || b["bot_user_id"] != "UT2BOT" || b["team"].(map[string]any)["id"] != "T2" {
		t.Fatalf("exchange: %v", b)
	}
	if b := exchange(s.ClientSecret, q.Get("redirect_uri")); b["error"] != "invalid_code" {
		t.Errorf("a code used twice: %v", b)
	}
	if got := s.TeamToken("T2"); got != token {
		t.Errorf("TeamToken = %q", got)
	}

	say := func(token, channel string) any {
		_, _, b := post(t, s, "chat.postMessage", token, url.Values{"channel": {channel}, "text": {"hi"}})
		return b["error"]
	}
	if e := say(token, "C2"); e != nil {
		t.Errorf("T2's token in T2's channel: %v", e)
	}
	if e := say(token, "C1"); e != "channel_not_found" {
		t.Errorf("T2's token in the first workspace's channel: %v", e)
	}
	if e := say(s.BotToken, "C2"); e != "channel_not_found" {
		t.Errorf("the first workspace's token in T2's channel: %v", e)
	}
	if m := s.Messages("C2"); len(m) != 1 || m[0].User != "UT2BOT" {
		t.Errorf("T2's messages: %+v", m)
	}
	cmd := s.SlashCommand("U1", "C2", "x")
	var fields map[string]string
	_ = json.Unmarshal(cmd.Payload, &fields)
	if fields["team_id"] != "T2" {
		t.Errorf("a command in C2 came from %q", fields["team_id"])
	}

	ev := s.Uninstall("T2")
	var outer struct {
		TeamID string `json:"team_id"`
		Event  struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if err := json.Unmarshal(ev.Payload, &outer); err != nil || outer.TeamID != "T2" || outer.Event.Type != "app_uninstalled" {
		t.Errorf("uninstall event %s", ev.Payload)
	}
	if e := say(token, "C2"); e != "invalid_auth" {
		t.Errorf("after uninstalling: %v", e)
	}
}
