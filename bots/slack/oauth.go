package slack

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/slack/install"
)

// The install pages, served on Easel's web server (see Mount).
const (
	installPath  = "/slack/install"
	redirectPath = "/slack/oauth_redirect"
)

// botScopes are the bot scopes a workspace grants when it installs Easel:
// those of manifest.yaml.
var botScopes = []string{
	"app_mentions:read", "assistant:write", "channels:history", "chat:write", "commands", "files:read", "files:write",
	"groups:history", "im:history", "mpim:history", "reactions:write", "users:read",
}

// Limits of an install: a state is good once, for stateTTL, in the browser
// that started the install; a query value longer than maxParam, or with
// other than printable ASCII, is not Slack's.
const (
	stateTTL    = 10 * time.Minute
	stateCookie = "easel_slack_oauth"
	maxParam    = 512
	// nonceSize is the size of a state's nonce and of the browser's
	// secret in the cookie.
	nonceSize = 16
)

// oauthFlow is the OAuth v2 install flow: where it sends the browser, and
// how it signs states.
type oauthFlow struct {
	authorizeURL string // Slack's authorize page
	redirectURL  string // PublicURL/slack/oauth_redirect
	secure       bool   // the cookie is sent over https only
	// stateKey signs states. It is derived from the token key, so that
	// every process sharing the store accepts the others' states.
	stateKey []byte
	now      func() time.Time
}

// newOAuthFlow checks the OAuth settings and returns the install flow and
// the box installed tokens are sealed with. Its errors name settings,
// never their values.
func (b *Bot) newOAuthFlow() (*oauthFlow, *install.Box, error) {
	cfg := b.cfg
	switch {
	case cfg.ClientSecret == "":
		return nil, nil, errors.New("slack: SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not: OAuth installs need both")
	case cfg.Installations == nil:
		return nil, nil, errors.New("slack: OAuth installs need a store for the installations")
	case len(cfg.TokenKey) == 0:
		return nil, nil, errors.New("slack: OAuth installs need EASEL_TOKEN_KEY, the key installed tokens are sealed with (make one with: openssl rand -base64 32)")
	}
	box, err := install.NewBox(cfg.TokenKey)
	if err != nil {
		return nil, nil, fmt.Errorf("slack: EASEL_TOKEN_KEY: %w", err)
	}
	public, err := url.Parse(cfg.PublicURL)
	if cfg.PublicURL == "" || err != nil || public.Host == "" || (public.Scheme != "https" && public.Scheme != "http") ||
		public.RawQuery != "" || public.Fragment != "" {
		return nil, nil, fmt.Errorf("slack: OAuth installs need web.public_url, the http(s) address people reach Easel at; %q is not one", cfg.PublicURL)
	}
	mac := hmac.New(sha256.New, cfg.TokenKey)
	mac.Write([]byte("easel slack oauth state"))
	return &oauthFlow{
		authorizeURL: b.apiURL.Scheme + "://" + b.apiURL.Host + "/oauth/v2/authorize",
		redirectURL:  strings.TrimSuffix(public.String(), "/") + redirectPath,
		secure:       public.Scheme == "https",
		stateKey:     mac.Sum(nil),
		now:          time.Now,
	}, box, nil
}

// Mux is where Mount serves the install pages: Easel's web server.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount serves the OAuth install flow on mux, if ClientID is set:
//
//   - GET /slack/install sends the browser to Slack's authorize page, to
//     add Easel to a workspace;
//   - GET /slack/oauth_redirect is where Slack sends it back: the
//     installation is checked, exchanged for a bot token
//     (oauth.v2.access) and stored.
//
// It reports whether it mounted them.
func (b *Bot) Mount(mux Mux) bool {
	if b.oauth == nil {
		return false
	}
	mux.Handle("GET "+installPath, http.HandlerFunc(b.startInstall))
	mux.Handle("GET "+redirectPath, http.HandlerFunc(b.finishInstall))
	return true
}

// startInstall sends the browser to Slack's authorize page with a fresh
// state, bound to the browser by a secret in a cookie.
func (b *Bot) startInstall(w http.ResponseWriter, r *http.Request) {
	state, secret, err := b.oauth.newState()
	if err != nil {
		b.log.Error("slack: install: no randomness", "err", err)
		page(w, http.StatusInternalServerError, "Something went wrong", "Easel could not start the installation. Try again in a moment.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookie, Value: base64.RawURLEncoding.EncodeToString(secret), Path: redirectPath,
		MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: b.oauth.secure, SameSite: http.SameSiteLaxMode,
	})
	q := url.Values{
		"client_id":    {b.cfg.ClientID},
		"scope":        {strings.Join(botScopes, ",")},
		"redirect_uri": {b.oauth.redirectURL},
		"state":        {state},
	}
	noStore(w)
	http.Redirect(w, r, b.oauth.authorizeURL+"?"+q.Encode(), http.StatusFound)
}

// newState returns a fresh state and the secret of the browser it is
// bound to: the state is a random nonce and an expiry, signed together
// with the secret.
func (f *oauthFlow) newState() (state string, secret []byte, err error) {
	secret = make([]byte, nonceSize)
	body := make([]byte, nonceSize+8)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(body[:nonceSize]); err != nil {
		return "", nil, err
	}
	binary.BigEndian.PutUint64(body[nonceSize:], uint64(f.now().Add(stateTTL).Unix()))
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(f.sign(secret, body)), secret, nil
}

// sign is the signature of a state's body for the browser holding secret.
func (f *oauthFlow) sign(secret, body []byte) []byte {
	mac := hmac.New(sha256.New, f.stateKey)
	mac.Write(secret)
	mac.Write(body)
	return mac.Sum(nil)
}

// finishInstall is where Slack sends the browser back. The state must be
// this browser's, fresh and unused; then the code is exchanged for the
// workspace's bot token, which is stored sealed. Every answer is a page
// that says what happened and shows no secret.
func (b *Bot) finishInstall(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	// The state is good once, whatever comes of it: the cookie goes too.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: redirectPath, MaxAge: -1, HttpOnly: true,
		Secure: b.oauth.secure, SameSite: http.SameSiteLaxMode})
	q, ok := redirectQuery(r.URL.RawQuery)
	if !ok {
		page(w, http.StatusBadRequest, "Not an answer from Slack", "This address is where Slack sends you back after you add Easel. Start again from the install link.")
		return
	}
	cookie, _ := r.Cookie(stateCookie)
	if err := b.useState(r.Context(), q.Get("state"), cookie); err != nil {
		refuseInstall(w, b.log, err)
		return
	}
	if e := q.Get("error"); e != "" {
		b.log.Info("slack: install cancelled in Slack", "error", e)
		text := "Slack did not install Easel (" + e + ")."
		if e == "access_denied" {
			text = "The installation was cancelled in Slack. Nothing was installed."
		}
		page(w, http.StatusForbidden, "Easel was not installed", text)
		return
	}
	if q.Get("code") == "" {
		page(w, http.StatusBadRequest, "Easel was not installed", "Slack sent no authorization code. Start again from the install link.")
		return
	}
	rec, team, err := b.exchange(r.Context(), q.Get("code"))
	if err != nil {
		b.log.Warn("slack: install failed", "err", err)
		page(w, http.StatusBadGateway, "Easel was not installed", "Slack did not confirm the installation"+slackReason(err)+". Start again from the install link.")
		return
	}
	b.log.Info("slack: app installed", "installation", rec.Key(), "installer", rec.Installer, "scopes", install.ScopeList(rec.Scopes))
	page(w, http.StatusOK, "Easel is installed", "Easel is installed in "+team+". Invite it to a channel with /invite @Easel, then try /imagine.")
}

// redirectQuery parses the query Slack sends back: state, and code or
// error, each at most maxParam bytes of printable ASCII, each once.
func redirectQuery(raw string) (url.Values, bool) {
	if len(raw) > 4*maxParam {
		return nil, false
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, false
	}
	for _, vs := range q {
		if len(vs) != 1 || len(vs[0]) > maxParam {
			return nil, false
		}
		for _, c := range []byte(vs[0]) {
			if c < 0x20 || c > 0x7e {
				return nil, false
			}
		}
	}
	return q, true
}

// useState checks a state against the browser's cookie and marks it used,
// in the store shared by every process. It returns errStateMissing,
// errStateForged, errStateExpired or errStateUsed for a state to refuse,
// or the store's error.
func (b *Bot) useState(ctx context.Context, state string, cookie *http.Cookie) error {
	id, err := b.oauth.checkState(state, cookie)
	if err != nil {
		return err
	}
	first, err := b.installs.MarkEvent(ctx, "slack-oauth-state:"+id, stateTTL)
	switch {
	case err != nil:
		return fmt.Errorf("slack: install: recording the state: %w", err)
	case !first:
		return errStateUsed
	}
	return nil
}

// refuseInstall answers a redirect whose state useState refused with a
// page saying why.
func refuseInstall(w http.ResponseWriter, log *slog.Logger, err error) {
	status, text := http.StatusForbidden, "This installation was not started in this browser, or the link was changed. Start again from the install link."
	switch {
	case errors.Is(err, errStateExpired):
		status, text = http.StatusBadRequest, "This installation took too long and expired. Start again from the install link."
	case errors.Is(err, errStateUsed):
		status, text = http.StatusBadRequest, "This installation link was used already. Start again from the install link."
	case !errors.Is(err, errStateMissing) && !errors.Is(err, errStateForged):
		log.Error("slack: install failed", "err", err)
		page(w, http.StatusServiceUnavailable, "Something went wrong", "Easel could not finish the installation. Start again from the install link.")
		return
	}
	log.Warn("slack: install refused", "reason", err)
	page(w, status, "Easel was not installed", text)
}

// Why a state is refused.
var (
	errStateMissing = errors.New("no state")
	errStateForged  = errors.New("the state does not match this browser's install")
	errStateExpired = errors.New("the state expired")
	errStateUsed    = errors.New("the state was used already")
)

// checkState checks a state against the browser's cookie and returns the
// id it is marked used under: its signed body. It does not tell whether
// the state was used.
func (f *oauthFlow) checkState(state string, cookie *http.Cookie) (id string, err error) {
	if state == "" {
		return "", errStateMissing
	}
	if cookie == nil {
		return "", errStateForged
	}
	b64 := base64.RawURLEncoding.Strict() // one spelling per value
	secret, err1 := b64.DecodeString(cookie.Value)
	b64body, b64sig, found := strings.Cut(state, ".")
	body, err2 := b64.DecodeString(b64body)
	sig, err3 := b64.DecodeString(b64sig)
	if !found || err1 != nil || err2 != nil || err3 != nil || len(secret) != nonceSize || len(body) != nonceSize+8 ||
		!hmac.Equal(sig, f.sign(secret, body)) {
		return "", errStateForged
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(body[nonceSize:])), 0)
	if !f.now().Before(expires) {
		return "", errStateExpired
	}
	return b64body, nil
}

// exchange trades an authorization code for the installation's bot token
// (oauth.v2.access) and stores the installation, its token sealed. It
// returns the installation and the workspace's name, to show.
func (b *Bot) exchange(ctx context.Context, code string) (install.Record, string, error) {
	resp, err := slackapi.GetOAuthV2ResponseContext(ctx, b.cfg.HTTPClient, b.cfg.ClientID, b.cfg.ClientSecret, code,
		b.oauth.redirectURL, slackapi.OAuthOptionAPIURL(b.cfg.APIURL))
	if err != nil {
		return install.Record{}, "", fmt.Errorf("oauth.v2.access: %w", err)
	}
	rec := install.Record{
		Team: resp.Team.ID, Enterprise: resp.Enterprise.ID, EnterpriseInstall: resp.IsEnterpriseInstall,
		BotUser: resp.BotUserID, Scopes: install.ParseScopes(resp.Scope), Installer: resp.AuthedUser.ID,
		InstalledAt: b.oauth.now().UTC(),
	}
	name := either(resp.Team.Name, resp.Enterprise.Name)
	switch {
	case resp.ExpiresIn > 0 || resp.RefreshToken != "":
		return install.Record{}, "", errors.New("oauth.v2.access: the bot token expires: turn token rotation off in the app's settings")
	case resp.TokenType != "bot" || !strings.HasPrefix(resp.AccessToken, "xoxb-"):
		return install.Record{}, "", errors.New("oauth.v2.access: no bot token in the answer")
	case rec.BotUser == "":
		return install.Record{}, "", errors.New("oauth.v2.access: no bot user in the answer")
	}
	if rec.Token, err = b.box.Seal(rec.Key(), resp.AccessToken); err != nil {
		return install.Record{}, "", err
	}
	if err := rec.Check(); err != nil {
		return install.Record{}, "", fmt.Errorf("oauth.v2.access: %w", err)
	}
	if err := b.installs.SaveInstallation(ctx, rec); err != nil {
		return install.Record{}, "", err
	}
	b.clients.drop(rec.Key()) // a new install brings a new token
	return rec, name, nil
}

// slackReason returns ": Slack's error code" for an answer Slack refused,
// or "".
func slackReason(err error) string {
	if code := errorCode(err); code != "" {
		return " (" + code + ")"
	}
	return ""
}

// noStore keeps an install answer out of caches and its address out of
// Referer headers.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// pageTemplate is every install page.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// page answers status with a page saying title and text, escaped.
func page(w http.ResponseWriter, status int, title, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Text string }{title, text})
}
