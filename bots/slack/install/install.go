// Package install holds what Easel keeps of a Slack app installation made
// through OAuth: the workspace (or Enterprise Grid organization) it serves,
// its bot user, its bot token sealed with AES-256-GCM, its scopes and who
// installed it. The Slack adapter makes and reads records; the session
// stores keep them (see storage and storage/postgres).
package install

import (
	"errors"
	"strings"
	"time"
)

// Record is one installation of the app.
type Record struct {
	// Team is the workspace id (T…); empty for an organization-wide
	// install.
	Team string
	// Enterprise is the Enterprise Grid organization id (E…), if any.
	Enterprise string
	// EnterpriseInstall is set for an organization-wide install, which
	// serves every workspace of Enterprise.
	EnterpriseInstall bool
	// BotUser is the bot's user id in the workspace or organization.
	BotUser string
	// Token is the bot token (xoxb-…) sealed by a Box for this record's
	// Key: never the token itself.
	Token []byte
	// Scopes are the bot scopes granted.
	Scopes []string
	// Installer is the user id of the person who installed the app.
	Installer string
	// InstalledAt is when the installation was stored.
	InstalledAt time.Time
}

// Key names the installation: TeamKey(Team), or for an organization-wide
// install EnterpriseKey(Enterprise). A store keeps one record per key.
func (r Record) Key() string {
	if r.EnterpriseInstall {
		return EnterpriseKey(r.Enterprise)
	}
	return TeamKey(r.Team)
}

// Check reports what makes rec one no Slack installation makes: no id
// for its key, or no token.
func (r Record) Check() error {
	switch {
	case r.EnterpriseInstall && r.Enterprise == "":
		return errors.New("install: an organization-wide install without an enterprise id")
	case !r.EnterpriseInstall && r.Team == "":
		return errors.New("install: an installation without a team id")
	case len(r.Token) == 0:
		return errors.New("install: an installation without a token")
	}
	return nil
}

// TeamKey is the key of a workspace's own installation.
func TeamKey(team string) string { return "team:" + team }

// EnterpriseKey is the key of an organization-wide installation.
func EnterpriseKey(enterprise string) string { return "enterprise:" + enterprise }

// ScopeList joins scopes as Slack writes them, "a,b,c".
func ScopeList(scopes []string) string { return strings.Join(scopes, ",") }

// ParseScopes splits Slack's "a,b,c", dropping empty names.
func ParseScopes(list string) []string {
	var scopes []string
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	return scopes
}
