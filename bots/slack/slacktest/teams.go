package slacktest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Team is a workspace of the fake besides its first (the Server's TeamID,
// served with BotToken). Its bot token comes from installing the app
// through OAuth (see Approve). Workspaces of one organization installed
// organization-wide share one bot: give them the same BotUserID and BotID.
type Team struct {
	ID         string // T…
	Domain     string
	Enterprise string // the Enterprise Grid organization, E…, if any
	BotUserID  string // the app's bot user in this workspace
	BotID      string
}

// team is a workspace as a call or a delivery sees it.
type team struct {
	id, domain, enterprise, botUser, botID string
}

// Approval is what the person visiting the authorize page does next.
type Approval struct {
	Team string // installs into this workspace (AddTeam), or the first
	User string // the installer
	// OrgWide installs into the whole organization of Team's Enterprise.
	OrgWide bool
	// Deny cancels, as a person pressing Cancel does: the browser is sent
	// back with error=access_denied.
	Deny bool
}

// grant is an authorization code waiting for oauth.v2.access.
type grant struct {
	approval    Approval
	redirectURI string
	scopes      string
	expires     time.Time
}

// codeTTL is how long an authorization code stays good; Slack's last ten
// minutes.
const codeTTL = 10 * time.Minute

// AddTeam adds a workspace. Channels are the first workspace's unless
// AddChannel gives them to another.
func (s *Server) AddTeam(t Team) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Domain = either(t.Domain, strings.ToLower(t.ID))
	t.BotUserID = either(t.BotUserID, "U"+t.ID+"BOT")
	t.BotID = either(t.BotID, "B"+t.ID)
	s.teams[t.ID] = t
}

// AddChannel makes channel one of team's: deliveries from it carry team's
// id, and only a token of team may touch it.
func (s *Server) AddChannel(channel, team string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[channel] = team
}

// Approve queues what the next visit to the authorize page does.
func (s *Server) Approve(a Approval) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.approvals = append(s.approvals, a)
}

// RotateTokens makes the next installs issue expiring bot tokens, as an
// app with token rotation on gets: "xoxe.xoxb-…" with expires_in and a
// refresh_token.
func (s *Server) RotateTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// AuthorizeURL returns the URL of the fake's OAuth v2 authorize page,
// whose root matches the API URL's as Slack's does.
func (s *Server) AuthorizeURL() string { return s.srv.URL + "/oauth/v2/authorize" }

// TeamToken returns the bot token an OAuth install issued for team (the
// team id, or the enterprise id of an organization-wide install), "" if
// it has none.
func (s *Server) TeamToken(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, owner := range s.tokens {
		if owner == key {
			return tok
		}
	}
	return ""
}

// Uninstall removes the app from team (a workspace, or an organization for
// an organization-wide install): its tokens stop working. It returns the
// app_uninstalled event Slack then delivers.
func (s *Server) Uninstall(team string) Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, owner := range s.tokens {
		if owner == team {
			delete(s.tokens, tok)
		}
	}
	return s.teamEvent(s.teamByID(team), map[string]any{"type": "app_uninstalled", "event_ts": s.nextTS()})
}

// RevokeBotToken revokes team's bot token and returns the tokens_revoked
// event Slack then delivers.
func (s *Server) RevokeBotToken(team string) Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, owner := range s.tokens {
		if owner == team {
			delete(s.tokens, tok)
		}
	}
	t := s.teamByID(team)
	return s.teamEvent(t, map[string]any{"type": "tokens_revoked", "event_ts": s.nextTS(),
		"tokens": map[string]any{"bot": []string{t.botUser}}})
}

// teamByID returns the workspace id; s.mu is held. The first workspace
// follows the Server's exported fields.
func (s *Server) teamByID(id string) team {
	if t, found := s.teams[id]; found {
		return team{id: t.ID, domain: t.Domain, enterprise: t.Enterprise, botUser: t.BotUserID, botID: t.BotID}
	}
	for _, t := range s.teams { // an organization-wide install
		if t.Enterprise == id {
			return team{id: t.ID, domain: t.Domain, enterprise: t.Enterprise, botUser: t.BotUserID, botID: t.BotID}
		}
	}
	return team{id: s.TeamID, domain: s.TeamDomain, botUser: s.BotUserID, botID: s.BotID}
}

// channelTeam returns the workspace of channel; s.mu is held.
func (s *Server) channelTeam(channel string) team {
	return s.teamByID(either(s.channels[channel], s.TeamID))
}

// tokenTeam returns the workspace a bot token belongs to; s.mu is held.
func (s *Server) tokenTeam(token string) (team, bool) {
	if token == s.BotToken {
		return s.teamByID(s.TeamID), true
	}
	owner, found := s.tokens[token]
	if !found {
		return team{}, false
	}
	return s.teamByID(owner), true
}

// serves reports whether a call of token's workspace may touch channel:
// a workspace's token touches its own channels; an organization-wide
// token those of every workspace in the organization. s.mu is held.
func (s *Server) serves(caller team, token, channel string) bool {
	return s.servesTeam(caller, token, s.channelTeam(channel).id)
}

// servesTeam reports whether a call of token's workspace may touch
// workspace id's channels and files; s.mu is held.
func (s *Server) servesTeam(caller team, token, id string) bool {
	if id == caller.id {
		return true
	}
	t := s.teamByID(id)
	return t.enterprise != "" && s.tokens[token] == t.enterprise
}

// authorizePage serves GET /oauth/v2/authorize: the person's answer queued
// with Approve sends the browser back to redirect_uri with a code (or
// error=access_denied) and the state, as Slack does. A request Slack
// would refuse (an unknown client_id, no redirect_uri, no scope) gets a
// page saying so.
func (s *Server) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	call := Call{Method: "authorize", Params: map[string]string{"client_id": q.Get("client_id"), "scope": q.Get("scope"),
		"redirect_uri": q.Get("redirect_uri"), "state": q.Get("state")}, At: time.Now(), Status: http.StatusFound}
	redirect, perr := url.Parse(q.Get("redirect_uri"))
	var problem string
	switch {
	case s.ClientID == "" || q.Get("client_id") != s.ClientID:
		problem = "invalid_client_id"
	case q.Get("redirect_uri") == "" || perr != nil || !redirect.IsAbs():
		problem = "bad_redirect_uri"
	case q.Get("scope") == "":
		problem = "invalid_scope"
	case len(s.approvals) == 0:
		problem = "nobody_there" // a test that forgot to Approve
	}
	var a Approval
	if problem == "" {
		a, s.approvals = s.approvals[0], s.approvals[1:]
	}
	back := url.Values{"state": {q.Get("state")}}
	switch {
	case problem != "":
		call.Status, call.Error = http.StatusBadRequest, problem
	case a.Deny:
		back.Set("error", "access_denied")
	default:
		code := s.nextID("code-") + "." + randomHex(8)
		s.codes[code] = &grant{approval: a, redirectURI: q.Get("redirect_uri"), scopes: q.Get("scope"), expires: time.Now().Add(codeTTL)}
		back.Set("code", code)
	}
	s.calls = append(s.calls, call)
	s.changed()
	s.mu.Unlock()
	if problem != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<!DOCTYPE html><html><body>Something went wrong: %s</body></html>", html.EscapeString(problem))
		return
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// oauthAccess serves oauth.v2.access: a code from the authorize page,
// used once, within codeTTL, with the redirect_uri it was issued for, by
// the app's client id and secret (in the form or as HTTP Basic auth),
// becomes a bot token of the workspace (or organization) that approved;
// s.mu is held.
func (s *Server) oauthAccess(r *http.Request, p map[string]string) reply {
	id, secret := p["client_id"], p["client_secret"]
	if u, pw, basic := r.BasicAuth(); basic {
		id, secret = u, pw
	}
	switch {
	case s.ClientID == "" || id != s.ClientID:
		return failed("invalid_client_id")
	case secret != s.ClientSecret:
		return failed("bad_client_secret")
	case p["code"] == "":
		return failed("invalid_code")
	}
	g := s.codes[p["code"]]
	delete(s.codes, p["code"]) // a code is good once, even when refused
	switch {
	case g == nil || time.Now().After(g.expires):
		return failed("invalid_code")
	case p["redirect_uri"] != g.redirectURI:
		return failed("bad_redirect_uri")
	}
	t := s.teamByID(either(g.approval.Team, s.TeamID))
	owner := t.id
	if g.approval.OrgWide {
		owner = t.enterprise
	}
	token := "xoxb-" + owner + "-" + randomHex(12)
	if s.rotate {
		token = "xoxe." + token
	}
	s.tokens[token] = owner
	out := map[string]any{"access_token": token, "token_type": "bot", "scope": g.scopes, "bot_user_id": t.botUser,
		"app_id": s.AppID, "team": map[string]any{"id": t.id, "name": t.domain},
		"is_enterprise_install": g.approval.OrgWide, "authed_user": map[string]any{"id": g.approval.User}}
	if s.rotate {
		out["expires_in"], out["refresh_token"] = 43200, "xoxe-1-"+randomHex(12)
	}
	if g.approval.OrgWide {
		out["team"] = nil
	}
	if t.enterprise != "" {
		out["enterprise"] = map[string]any{"id": t.enterprise, "name": t.enterprise}
	}
	return ok(out)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
