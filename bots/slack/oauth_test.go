package slack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/storage"
)

// oauthHarness is a harness whose bot serves only the workspaces that
// installed it through OAuth, with the install pages on web.
type oauthHarness struct {
	*harness
	web *httptest.Server
	key []byte
}

// newOAuthHarness starts a bot with no SLACK_BOT_TOKEN, installable
// through OAuth into the fake's workspaces T2 (channel C2) and T3 (C3).
func newOAuthHarness(t *testing.T, o options) *oauthHarness {
	t.Helper()
	mux := http.NewServeMux()
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	key := newTokenKey(t)
	var db *storage.DB
	before := o.before
	o.before = func(fake *slacktest.Server, d *storage.DB) {
		db = d
		fake.AddTeam(slacktest.Team{ID: "T2", Domain: "two"})
		fake.AddTeam(slacktest.Team{ID: "T3", Domain: "three"})
		fake.AddChannel("C2", "T2")
		fake.AddChannel("C3", "T3")
		if before != nil {
			before(fake, d)
		}
	}
	more := o.cfg
	o.cfg = func(cfg *Config) {
		cfg.BotToken = ""
		cfg.ClientID, cfg.ClientSecret = "1234567890.0987654321", "slacktest-client-secret"
		cfg.TokenKey, cfg.Installations, cfg.PublicURL = key, db, web.URL
		if more != nil {
			more(cfg)
		}
	}
	h := newHarness(t, o)
	if !h.bot.Mount(mux) {
		t.Fatal("Mount mounted nothing")
	}
	return &oauthHarness{harness: h, web: web, key: key}
}

func newTokenKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, install.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// browser is a client with a cookie jar that follows redirects.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// get fetches u and returns the final status and page.
func get(t testing.TB, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// install adds the app to team as user, through the install page, the
// fake's authorize page and the redirect back, as a browser does.
func (h *oauthHarness) install(team, user string) {
	h.t.Helper()
	h.fake.Approve(slacktest.Approval{Team: team, User: user})
	status, body := get(h.t, browser(h.t), h.web.URL+"/slack/install")
	if status != http.StatusOK || !strings.Contains(body, "Easel is installed") {
		h.t.Fatalf("installing into %s: %d %s", team, status, body)
	}
}

// callsIn returns the Web API calls that named channel.
func (h *oauthHarness) callsIn(channel string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range h.fake.Calls("") {
		if c.Params["channel"] == channel || c.Params["channel_id"] == channel {
			out = append(out, c)
		}
	}
	return out
}

func TestInstallIntoManyWorkspaces(t *testing.T) {
	h := newOAuthHarness(t, options{})
	h.install("T2", ana)
	h.install("T3", bob)
	tokens := map[string]string{"C2": h.fake.TeamToken("T2"), "C3": h.fake.TeamToken("T3")}
	if tokens["C2"] == "" || tokens["C3"] == "" || tokens["C2"] == tokens["C3"] {
		t.Fatalf("tokens issued: %v", tokens)
	}

	ctx := context.Background()
	for team, installer := range map[string]string{"T2": ana, "T3": bob} {
		rec, found, err := h.db.Installation(ctx, install.TeamKey(team))
		if err != nil || !found {
			t.Fatalf("installation of %s: %v, %v", team, found, err)
		}
		if rec.Team != team || rec.BotUser != "U"+team+"BOT" || rec.Installer != installer || !slices.Equal(rec.Scopes, botScopes) || rec.InstalledAt.IsZero() {
			t.Errorf("installation of %s: %+v", team, rec)
		}
		if bytes.Contains(rec.Token, []byte("xoxb-")) {
			t.Errorf("the token of %s is stored in the clear", team)
		}
	}

	// An image in each workspace, each made with that workspace's token.
	root2 := h.slash(ana, "C2", "a red fox")
	root3 := h.slash(bob, "C3", "a blue hen")
	ups := h.images(2)
	shared := map[string]string{}
	for _, u := range ups {
		shared[u.Channel] = u.ThreadTS
	}
	if shared["C2"] != root2 || shared["C3"] != root3 {
		t.Errorf("images shared in %v; want C2/%s and C3/%s", shared, root2, root3)
	}
	h.settle()
	for channel, token := range tokens {
		calls := h.callsIn(channel)
		if len(calls) == 0 {
			t.Errorf("no calls in %s", channel)
		}
		for _, c := range calls {
			if c.Token != token || c.Error != "" {
				t.Errorf("%s in %s: token of the right workspace %v, error %q", c.Method, channel, c.Token == token, c.Error)
			}
		}
	}
	if m, _ := h.fake.Message("C2", root2); m.User != "UT2BOT" {
		t.Errorf("the root in C2 was posted by %s, not T2's bot", m.User)
	}

	// Uninstalled from T2: its installation and client go, T3 still works.
	h.deliver(h.fake.Uninstall("T2"))
	h.fake.WaitFor(t, "T2's installation and client removed", func() bool {
		_, found, _ := h.db.Installation(ctx, install.TeamKey("T2"))
		w, _, _ := h.bot.clients.get(install.TeamKey("T2"))
		return !found && w == nil
	})
	before := len(h.callsIn("C2"))
	h.deliver(h.fake.SlashCommand(ana, "C2", "a green owl"))
	h.slash(bob, "C3", "a yellow cat")
	h.images(3)
	h.settle()
	if got := h.callsIn("C2"); len(got) != before {
		t.Errorf("after uninstalling, Easel still called Slack in C2: %+v", got[before:])
	}
	if _, found, _ := h.db.Installation(ctx, install.TeamKey("T3")); !found {
		t.Error("uninstalling T2 removed T3")
	}
}

func TestTokensRevokedRemovesTheInstallation(t *testing.T) {
	h := newOAuthHarness(t, options{})
	h.install("T2", ana)
	h.slash(ana, "C2", "a red fox")
	h.deliver(h.fake.RevokeBotToken("T2"))
	h.fake.WaitFor(t, "T2's installation removed", func() bool {
		_, found, _ := h.db.Installation(context.Background(), install.TeamKey("T2"))
		return !found
	})
	// Installing again brings a new token, which is used.
	h.install("T2", bob)
	h.slash(ana, "C2", "a blue hen")
	h.images(1)
	h.settle()
	token := h.fake.TeamToken("T2")
	calls := h.callsIn("C2")
	if last := calls[len(calls)-1]; last.Token != token || last.Error != "" {
		t.Errorf("after installing again, %s used the new token %v, error %q", last.Method, last.Token == token, last.Error)
	}
}

func TestOrganizationWideInstall(t *testing.T) {
	h := newOAuthHarness(t, options{before: func(fake *slacktest.Server, _ *storage.DB) {
		fake.AddTeam(slacktest.Team{ID: "T4", Enterprise: "E1", BotUserID: "UORGBOT", BotID: "BORG"})
		fake.AddTeam(slacktest.Team{ID: "T5", Enterprise: "E1", BotUserID: "UORGBOT", BotID: "BORG"})
		fake.AddChannel("C4", "T4")
		fake.AddChannel("C5", "T5")
	}})
	h.fake.Approve(slacktest.Approval{Team: "T4", User: ana, OrgWide: true})
	if status, body := get(t, browser(t), h.web.URL+"/slack/install"); status != http.StatusOK {
		t.Fatalf("org-wide install: %d %s", status, body)
	}
	rec, found, err := h.db.Installation(context.Background(), install.EnterpriseKey("E1"))
	if err != nil || !found || !rec.EnterpriseInstall || rec.Team != "" {
		t.Fatalf("org-wide installation: %+v, %v, %v", rec, found, err)
	}
	// Both workspaces of the organization are served with its one token.
	h.slash(ana, "C4", "a red fox")
	h.slash(bob, "C5", "a blue hen")
	h.images(2)
	h.settle()
	token := h.fake.TeamToken("E1")
	for _, channel := range []string{"C4", "C5"} {
		for _, c := range h.callsIn(channel) {
			if c.Token != token || c.Error != "" {
				t.Errorf("%s in %s: the organization's token %v, error %q", c.Method, channel, c.Token == token, c.Error)
			}
		}
	}
}

// The installed tokens never reach the database file in the clear.
func TestInstalledTokensAreNotStoredInTheClear(t *testing.T) {
	h := newOAuthHarness(t, options{})
	h.install("T2", ana)
	h.install("T3", bob)
	token := h.fake.TeamToken("T2")
	// Every install is committed, so the file holds it.
	data, err := os.ReadFile(filepath.Join(h.db.Dir(), storage.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(h.key)
	for name, secret := range map[string]string{"T2's token": token, "T3's token": h.fake.TeamToken("T3"),
		"its random part": strings.TrimPrefix(token, "xoxb-T2-"), "the client secret": h.fake.ClientSecret, "the token key": b64} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the database file holds %s", name)
		}
	}
	if !bytes.Contains(data, []byte("team:T2")) {
		t.Error("the database file holds no installation: the scan scanned nothing")
	}
}

// The scopes asked for are the manifest's.
func TestBotScopesAreTheManifests(t *testing.T) {
	data, err := os.ReadFile("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, bot, _ := strings.Cut(string(data), "    bot:\n")
	bot, _, _ = strings.Cut(bot, "\nsettings:")
	var scopes []string
	for _, m := range regexp.MustCompile(`(?m)^      - ([a-z:._]+)`).FindAllStringSubmatch(bot, -1) {
		scopes = append(scopes, m[1])
	}
	if !slices.Equal(scopes, botScopes) {
		t.Errorf("manifest scopes %v, botScopes %v", scopes, botScopes)
	}
}

// noFollow is a browser that stops at each redirect.
func noFollow(t testing.TB) *http.Client {
	c := browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// location fetches u with c and returns where it redirects to.
func location(t testing.TB, c *http.Client, u string) *url.URL {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("GET %s: %d, no redirect", u, resp.StatusCode)
	}
	return loc
}

// approved starts an install in c and has the fake approve it into T2:
// it returns the redirect back to Easel, not yet followed.
func (h *oauthHarness) approved(c *http.Client) *url.URL {
	h.t.Helper()
	h.fake.Approve(slacktest.Approval{Team: "T2", User: ana})
	return location(h.t, c, location(h.t, c, h.web.URL+"/slack/install").String())
}

func TestInstallPageAsksForTheManifestScopes(t *testing.T) {
	h := newOAuthHarness(t, options{})
	c := noFollow(t)
	resp, err := c.Get(h.web.URL + "/slack/install")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	q := loc.Query()
	if loc.Scheme+"://"+loc.Host+loc.Path != h.fake.AuthorizeURL() || q.Get("client_id") != h.fake.ClientID ||
		q.Get("scope") != strings.Join(botScopes, ",") || q.Get("redirect_uri") != h.web.URL+"/slack/oauth_redirect" || len(q.Get("state")) < 40 {
		t.Errorf("sent to %s", loc)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	ck := cookies[0]
	if ck.Name != stateCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/slack/oauth_redirect" || ck.MaxAge != 600 || ck.Secure {
		t.Errorf("cookie %+v", ck)
	}
	if strings.Contains(loc.String(), ck.Value) {
		t.Error("the browser's secret is in the state")
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

func TestHostileInstallRedirects(t *testing.T) {
	var skew atomic.Int64
	h := newOAuthHarness(t, options{bot: func(b *Bot) {
		b.oauth.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}})
	redirect := h.web.URL + "/slack/oauth_redirect"
	secrets := []string{h.fake.ClientSecret, base64.StdEncoding.EncodeToString(h.key), "xoxb-"}
	check := func(name string, c *http.Client, u string, status int, says string) {
		t.Helper()
		got, body := get(t, c, u)
		if got != status || !strings.Contains(body, says) {
			t.Errorf("%s: %d %q; want %d saying %q", name, got, body, status, says)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s: the page shows a secret", name)
			}
		}
	}
	notStarted := "not started in this browser"

	// Another browser's redirect, without the cookie.
	back := h.approved(noFollow(t))
	check("no cookie", browser(t), back.String(), http.StatusForbidden, notStarted)

	// The state of one browser with the cookie of another.
	a, b := noFollow(t), noFollow(t)
	backA := h.approved(a)
	location(t, b, h.web.URL+"/slack/install") // b starts an install of its own
	check("another browser's cookie", b, backA.String(), http.StatusForbidden, notStarted)

	// Forged, truncated and missing states.
	c := noFollow(t)
	back = h.approved(c)
	q := back.Query()
	state := q.Get("state")
	other := func(c byte) string { // another base64 character than c
		if c == 'A' {
			return "B"
		}
		return "A"
	}
	for name, forged := range map[string]string{
		"forged signature": state[:len(state)-5] + other(state[len(state)-5]) + state[len(state)-4:],
		"changed padding":  state[:len(state)-1] + string(state[len(state)-1]^1),
		"forged nonce":     other(state[0]) + state[1:],
		"no signature":     strings.Split(state, ".")[0],
		"garbage":          "%%%",
		"missing":          "",
	} {
		q2 := url.Values{"code": {q.Get("code")}, "state": {forged}}
		check(name, c, redirect+"?"+q2.Encode(), http.StatusForbidden, "Easel was not installed")
	}

	// Oversized, repeated and escape-laden parameters: refused before
	// anything else.
	for name, raw := range map[string]string{
		"oversized code":  "code=" + strings.Repeat("a", 600) + "&state=" + url.QueryEscape(state),
		"oversized query": "x=" + strings.Repeat("a", 3000),
		"repeated state":  "code=x&state=" + url.QueryEscape(state) + "&state=" + url.QueryEscape(state),
		"escape sequence": "code=%1B%5B31mred&state=" + url.QueryEscape(state),
		"newline":         "code=a%0Ab&state=" + url.QueryEscape(state),
		"not utf-8":       "code=%FF&state=" + url.QueryEscape(state),
		"bad escaping":    "code=%zz&state=" + url.QueryEscape(state),
	} {
		check(name, c, redirect+"?"+raw, http.StatusBadRequest, "Not an answer from Slack")
	}

	// The state is good once: the original redirect, with its cookie,
	// installs; replayed with the same cookie, it is refused.
	c = noFollow(t)
	back = h.approved(c)
	cookies := c.Jar.Cookies(back)
	check("the real redirect", c, back.String(), http.StatusOK, "Easel is installed")
	replay := browser(t)
	replay.Jar.SetCookies(back, cookies)
	check("replayed", replay, back.String(), http.StatusBadRequest, "used already")

	// An expired state.
	c = noFollow(t)
	back = h.approved(c)
	skew.Store(int64(stateTTL + time.Second))
	check("expired", c, back.String(), http.StatusBadRequest, "expired")
	skew.Store(0)

	// Cancelled in Slack; an error code with markup is shown escaped.
	c = noFollow(t)
	start := location(t, c, h.web.URL+"/slack/install")
	h.fake.Approve(slacktest.Approval{Deny: true})
	back = location(t, c, start.String())
	check("access denied", c, back.String(), http.StatusForbidden, "cancelled in Slack")
	c = noFollow(t)
	start = location(t, c, h.web.URL+"/slack/install")
	q = url.Values{"error": {"<script>alert(1)</script>"}, "state": {start.Query().Get("state")}}
	got, body := get(t, c, redirect+"?"+q.Encode())
	if got != http.StatusForbidden || strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("markup in error: %d %q", got, body)
	}

	// A code Slack refuses.
	c = noFollow(t)
	start = location(t, c, h.web.URL+"/slack/install")
	q = url.Values{"code": {"not-a-code"}, "state": {start.Query().Get("state")}}
	check("refused code", c, redirect+"?"+q.Encode(), http.StatusBadGateway, "invalid_code")
	// A redirect with a good state and no code.
	c = noFollow(t)
	start = location(t, c, h.web.URL+"/slack/install")
	q = url.Values{"state": {start.Query().Get("state")}}
	check("no code", c, redirect+"?"+q.Encode(), http.StatusBadRequest, "no authorization code")

	// Only the one real install was stored.
	ctx := context.Background()
	if _, found, _ := h.db.Installation(ctx, install.TeamKey("T2")); !found {
		t.Error("the real install was not stored")
	}
	for _, team := range []string{"T3", h.fake.TeamID} {
		if _, found, _ := h.db.Installation(ctx, install.TeamKey(team)); found {
			t.Errorf("%s was installed", team)
		}
	}
}

// A wrong client secret makes Slack refuse every code; the secret shows
// nowhere.
func TestInstallWithAWrongClientSecret(t *testing.T) {
	h := newOAuthHarness(t, options{cfg: func(cfg *Config) { cfg.ClientSecret = "a-wrong-client-secret" }})
	h.fake.Approve(slacktest.Approval{Team: "T2", User: ana})
	status, body := get(t, browser(t), h.web.URL+"/slack/install")
	if status != http.StatusBadGateway || !strings.Contains(body, "bad_client_secret") || strings.Contains(body, "a-wrong-client-secret") {
		t.Errorf("%d %q", status, body)
	}
	if _, found, _ := h.db.Installation(context.Background(), install.TeamKey("T2")); found {
		t.Error("installed with a refused exchange")
	}
}

// With token rotation on, Slack answers with an expiring token, which
// Easel refuses rather than store a token that stops working.
func TestInstallWithTokenRotationIsRefused(t *testing.T) {
	h := newOAuthHarness(t, options{})
	h.fake.RotateTokens(true)
	h.fake.Approve(slacktest.Approval{Team: "T2", User: ana})
	status, body := get(t, browser(t), h.web.URL+"/slack/install")
	if status != http.StatusBadGateway || strings.Contains(body, "xoxe") {
		t.Errorf("%d %q", status, body)
	}
	if _, found, _ := h.db.Installation(context.Background(), install.TeamKey("T2")); found {
		t.Error("an expiring token was installed")
	}
}

func TestOAuthConfig(t *testing.T) {
	fake := slacktest.NewServer(t)
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	key := newTokenKey(t)
	good := Config{AppToken: fake.AppToken, APIURL: fake.APIURL(), ClientID: "cid", ClientSecret: "the-client-secret",
		TokenKey: key, Installations: db, PublicURL: "https://easel.example.com/"}
	b, err := New(good, &countingEngine{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.oauth.redirectURL != "https://easel.example.com/slack/oauth_redirect" || !b.oauth.secure ||
		b.oauth.authorizeURL != strings.TrimSuffix(fake.APIURL(), "/api/")+"/oauth/v2/authorize" {
		t.Errorf("flow %+v", b.oauth)
	}
	// Served over https, the cookie is Secure.
	rec := httptest.NewRecorder()
	b.startInstall(rec, httptest.NewRequest("GET", "/slack/install", nil))
	if ck := rec.Result().Cookies(); len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly {
		t.Errorf("https cookie %+v", ck)
	}
	for name, change := range map[string]func(*Config){
		"no secret":       func(c *Config) { c.ClientSecret = "" },
		"no key":          func(c *Config) { c.TokenKey = nil },
		"short key":       func(c *Config) { c.TokenKey = key[:16] },
		"no store":        func(c *Config) { c.Installations = nil },
		"no public url":   func(c *Config) { c.PublicURL = "" },
		"relative url":    func(c *Config) { c.PublicURL = "easel.example.com" },
		"ftp url":         func(c *Config) { c.PublicURL = "ftp://easel.example.com" },
		"no token at all": func(c *Config) { c.ClientID = "" },
	} {
		cfg := good
		change(&cfg)
		_, err := New(cfg, &countingEngine{}, db, nil)
		if err == nil {
			t.Errorf("%s: New succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), "the-client-secret") || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key)) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}

// In http mode, with SLACK_BOT_TOKEN beside OAuth: the token's own
// workspace is served with it, an installed one with its own.
func TestInstallInHTTPModeBesideTheBotToken(t *testing.T) {
	var fake *slacktest.Server
	h := newOAuthHarness(t, options{http: true,
		before: func(f *slacktest.Server, _ *storage.DB) { fake = f },
		cfg:    func(c *Config) { c.BotToken = fake.BotToken },
	})
	h.install("T2", ana)
	post := func(env slacktest.Envelope) {
		t.Helper()
		if status, body := h.fake.PostHTTP(t, h.url, env, slacktest.Signing{}); status != http.StatusOK {
			t.Fatalf("delivery: %d %s", status, body)
		}
	}
	post(h.fake.SlashCommand(ana, "C1", "a red fox"))
	post(h.fake.SlashCommand(bob, "C2", "a blue hen"))
	h.images(2)
	h.settle()
	for channel, token := range map[string]string{"C1": h.fake.BotToken, "C2": h.fake.TeamToken("T2")} {
		calls := h.callsIn(channel)
		if len(calls) == 0 {
			t.Errorf("no calls in %s", channel)
		}
		for _, c := range calls {
			if c.Token != token || c.Error != "" {
				t.Errorf("%s in %s: the workspace's token %v, error %q", c.Method, channel, c.Token == token, c.Error)
			}
		}
	}
	post(h.fake.Uninstall("T2"))
	h.fake.WaitFor(t, "T2's installation removed", func() bool {
		_, found, _ := h.db.Installation(context.Background(), install.TeamKey("T2"))
		return !found
	})
	post(h.fake.SlashCommand(ana, "C1", "a green owl"))
	h.images(3)
}

// An install or uninstall that another process sharing the store handled
// is noticed within clientTTL.
func TestInstallsOfAnotherProcessAreNoticed(t *testing.T) {
	var skew atomic.Int64
	h := newOAuthHarness(t, options{bot: func(b *Bot) {
		b.clients.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}})
	h.install("T2", ana)
	h.slash(ana, "C2", "a red fox")
	h.images(1)
	h.settle()

	mux := http.NewServeMux()
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	other, err := New(Config{AppToken: h.fake.AppToken, APIURL: h.fake.APIURL(), ClientID: h.fake.ClientID, ClientSecret: h.fake.ClientSecret,
		TokenKey: h.key, Installations: h.db, PublicURL: web.URL}, h.engine, h.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	other.Mount(mux)
	// T2 revokes the token and installs again through the other process.
	h.fake.RevokeBotToken("T2")
	h.fake.Approve(slacktest.Approval{Team: "T2", User: bob})
	if status, body := get(t, browser(t), web.URL+"/slack/install"); status != http.StatusOK {
		t.Fatalf("install through the other process: %d %s", status, body)
	}
	token := h.fake.TeamToken("T2")
	skew.Store(int64(clientTTL))
	root := h.slash(ana, "C2", "a blue hen")
	h.images(2)
	h.reacted("C2", root, reactDone)
	h.settle()
	calls := h.callsIn("C2")
	if last := calls[len(calls)-1]; last.Token != token || last.Error != "" {
		t.Errorf("after the other process's install, %s used the new token %v, error %q", last.Method, last.Token == token, last.Error)
	}

	// The other process handles T2's uninstall.
	other.uninstall(context.Background(), install.TeamKey("T2"))
	skew.Store(int64(2 * clientTTL))
	before := len(h.callsIn("C2"))
	h.deliver(h.fake.SlashCommand(ana, "C2", "a green owl"))
	h.settle()
	if got := h.callsIn("C2"); len(got) != before {
		t.Errorf("after the other process's uninstall, Easel still called Slack in C2: %+v", got[before:])
	}
}

// countingInstalls counts the installations read.
type countingInstalls struct {
	Installations
	reads atomic.Int64
}

func (c *countingInstalls) Installation(ctx context.Context, key string) (install.Record, bool, error) {
	c.reads.Add(1)
	return c.Installations.Installation(ctx, key)
}

// A workspace without an installation is looked up once per clientTTL,
// not at every call.
func TestNotInstalledIsRemembered(t *testing.T) {
	fake := slacktest.NewServer(t)
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	installs := &countingInstalls{Installations: db}
	b, err := New(Config{AppToken: fake.AppToken, APIURL: fake.APIURL(), ClientID: "cid", ClientSecret: "secret",
		TokenKey: newTokenKey(t), Installations: installs, PublicURL: "https://easel.example.com"}, &countingEngine{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var skew time.Duration
	b.clients.now = func() time.Time { return time.Now().Add(skew) }
	ctx := context.Background()
	for range 3 {
		if _, err := b.workspace(ctx, teamID{team: "T9"}); !errors.Is(err, errNotInstalled) {
			t.Fatalf("workspace of T9: %v, want errNotInstalled", err)
		}
	}
	if n := installs.reads.Load(); n != 1 {
		t.Errorf("%d reads, want 1", n)
	}
	skew = clientTTL
	_, _ = b.workspace(ctx, teamID{team: "T9"})
	if n := installs.reads.Load(); n != 2 {
		t.Errorf("%d reads after clientTTL, want 2", n)
	}
}
