package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/core"
)

// nopEngine and nopLog satisfy New's arguments for tests that never run.
type nopEngine struct{ Engine } // only Handle and Session are called

func (nopEngine) Handle(context.Context, core.Thread, core.Message) (core.Queued, error) {
	return core.Queued{}, nil
}
func (nopEngine) Session(context.Context, string, string) (*core.Session, error) { return nil, nil }

type nopLog struct{ inbox.Store } // never called

func TestNewChecksConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{AppToken: "xapp-1"}, "SLACK_BOT_TOKEN"},
		{Config{BotToken: "xoxb-1"}, "SLACK_APP_TOKEN"},
		{Config{BotToken: "xoxb-1", Mode: "http"}, "SLACK_SIGNING_SECRET"},
		{Config{BotToken: "xoxb-1", AppToken: "xapp-1", SigningSecret: "s", Mode: "rtm"}, `mode "rtm"`},
		{Config{BotToken: "xoxb-1", AppToken: "xapp-1", Command: "imagine"}, "must start with /"},
		{Config{BotToken: "xoxb-1", AppToken: "xapp-1", APIURL: "ftp://x/"}, "not an http(s) URL"},
	} {
		_, err := New(c.cfg, nopEngine{}, nopLog{}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error naming %s", c.cfg, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "xoxb-1") || strings.Contains(err.Error(), "xapp-1")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	b, err := New(Config{BotToken: "xoxb-1", AppToken: "xapp-1", APIURL: "http://127.0.0.1:9/api"}, nopEngine{}, nopLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.cfg.APIURL != "http://127.0.0.1:9/api/" || b.cfg.Command != "/imagine" || b.cfg.Mode != "socket" {
		t.Errorf("defaults: %+v", b.cfg)
	}
}

func TestTrustedHosts(t *testing.T) {
	b, err := New(Config{BotToken: "xoxb-1", AppToken: "xapp-1", APIURL: "http://127.0.0.1:9/api/"}, nopEngine{}, nopLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"https://files.slack.com/files-pri/T1-F1/x.png": true,
		"https://files.slack-gov.com/files-pri/x":       true,
		"https://hooks.slack.com/commands/1/2/3":        true,
		"http://127.0.0.1:9/files-pri/T1-F1/x.png":      true,
		"http://files.slack.com/x.png":                  false, // not https
		"https://slack.com.evil.example/x.png":          false,
		"https://evilslack.com/x.png":                   false,
		"http://127.0.0.1:10/x.png":                     false, // another port
		"https://127.0.0.1:9/x.png":                     false, // another scheme
	} {
		u, _ := url.Parse(raw)
		if got := b.trusted(u); got != want {
			t.Errorf("trusted(%s) = %v", raw, got)
		}
	}
}

func TestText(t *testing.T) {
	if got := promptText("<@UB> a &lt;b&gt; &amp; c <@UB|easel> ", "UB"); got != "a <b> & c" {
		t.Errorf("promptText: %q", got)
	}
	if !mentions("hi <@UB|easel>", "UB") || mentions("hi <@UBX>", "UB") || mentions("hi", "") {
		t.Error("mentions")
	}
	if c, ts, ok := splitKey(threadKey("C1", "1.2")); !ok || c != "C1" || ts != "1.2" {
		t.Error("splitKey(threadKey)")
	}
	for _, bad := range []string{"", "C1", "C1/", "/1.2"} {
		if _, _, ok := splitKey(bad); ok {
			t.Errorf("splitKey(%q) ok", bad)
		}
	}
}

func TestButtonValues(t *testing.T) {
	s, v, ok := parseValue(buttonValue("abc123", 7))
	if !ok || s != "abc123" || v != 7 {
		t.Errorf("round trip: %s %d %v", s, v, ok)
	}
	for _, bad := range []string{"", "abc", "abc:", ":3", "abc:0", "abc:x"} {
		if _, _, ok := parseValue(bad); ok {
			t.Errorf("parseValue(%q) ok", bad)
		}
	}
	for _, btn := range core.Buttons {
		if a, ok := buttonAction(string(btn.Action)); !ok || a != btn.Action {
			t.Errorf("buttonAction(%s)", btn.Action)
		}
	}
	if _, ok := buttonAction("prompt"); ok {
		t.Error("prompt is not a button")
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		err     error
		wait    time.Duration
		limited bool
	}{
		{&slackapi.RateLimitedError{RetryAfter: 3 * time.Second}, 3 * time.Second, true},
		{fmt.Errorf("upload: %w", &slackapi.RateLimitedError{}), minRetryWait, true},
		{slackapi.SlackErrorResponse{Err: "ratelimited"}, minRetryWait, true},
		{slackapi.SlackErrorResponse{Err: "channel_not_found"}, 0, false},
		{errors.New("boom"), 0, false},
	} {
		wait, limited := retryAfter(c.err)
		if wait != c.wait || limited != c.limited {
			t.Errorf("retryAfter(%v) = %s, %v", c.err, wait, limited)
		}
	}
}
