package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// The environment variables that hold the secrets.
const (
	envOpenAIKey          = "OPENAI_API_KEY"
	envSlackBotToken      = "SLACK_BOT_TOKEN"
	envSlackAppToken      = "SLACK_APP_TOKEN"
	envSlackSigningSecret = "SLACK_SIGNING_SECRET"
	envDiscordBotToken    = "DISCORD_BOT_TOKEN"
	envPostgresURL        = "EASEL_POSTGRES_URL"
	envAWSAccessKey       = "AWS_ACCESS_KEY_ID"
	envAWSSecretKey       = "AWS_SECRET_ACCESS_KEY"
	envSlackClientID      = "SLACK_CLIENT_ID"
	envSlackClientSecret  = "SLACK_CLIENT_SECRET"
	envTokenKey           = "EASEL_TOKEN_KEY"
	envWebKey             = "EASEL_WEB_KEY"
)

// MinWebKeyBytes is the shortest web signing key, decoded.
const MinWebKeyBytes = 32

// Secrets are the credentials, read only from the environment (never from
// the file). However it is printed, logged or encoded, a Secrets value shows
// only which secrets are set, never their values.
type Secrets struct {
	OpenAIKey          string // OPENAI_API_KEY
	SlackBotToken      string // SLACK_BOT_TOKEN (xoxb-…)
	SlackAppToken      string // SLACK_APP_TOKEN (xapp-…), for Socket Mode
	SlackSigningSecret string // SLACK_SIGNING_SECRET, for http mode
	DiscordBotToken    string // DISCORD_BOT_TOKEN
	PostgresURL        string // EASEL_POSTGRES_URL, for storage.backend = "postgres"; it may hold a password
	AWSAccessKeyID     string // AWS_ACCESS_KEY_ID, for images.backend = "s3"
	AWSSecretAccessKey string // AWS_SECRET_ACCESS_KEY, for images.backend = "s3"
	// SLACK_CLIENT_ID and SLACK_CLIENT_SECRET, to install the Slack app
	// into many workspaces through OAuth.
	SlackClientID     string
	SlackClientSecret string
	// EASEL_TOKEN_KEY, the key installed Slack tokens are sealed with: 32
	// bytes in base64, as `openssl rand -base64 32` prints.
	TokenKey string
	// WebKey is EASEL_WEB_KEY: base64 of at least MinWebKeyBytes random
	// bytes, which sign the web gallery's links; see WebSigningKey.
	WebKey string
}

// secretVar is one secret: where it comes from and where it is kept.
type secretVar struct {
	env   string  // the environment variable
	field string  // the name of its Secrets field
	value *string // the field
}

// vars returns s's secrets in a fixed order.
func (s *Secrets) vars() []secretVar {
	return []secretVar{
		{envOpenAIKey, "OpenAIKey", &s.OpenAIKey},
		{envSlackBotToken, "SlackBotToken", &s.SlackBotToken},
		{envSlackAppToken, "SlackAppToken", &s.SlackAppToken},
		{envSlackSigningSecret, "SlackSigningSecret", &s.SlackSigningSecret},
		{envDiscordBotToken, "DiscordBotToken", &s.DiscordBotToken},
		{envPostgresURL, "PostgresURL", &s.PostgresURL},
		{envAWSAccessKey, "AWSAccessKeyID", &s.AWSAccessKeyID},
		{envAWSSecretKey, "AWSSecretAccessKey", &s.AWSSecretAccessKey},
		{envSlackClientID, "SlackClientID", &s.SlackClientID},
		{envSlackClientSecret, "SlackClientSecret", &s.SlackClientSecret},
		{envTokenKey, "TokenKey", &s.TokenKey},
		{envWebKey, "WebKey", &s.WebKey},
	}
}

// webKeyRule says what EASEL_WEB_KEY must be.
const webKeyRule = "must be base64 of at least 32 random bytes, such as `openssl rand -base64 32` prints"

// WebSigningKey returns the web gallery's signing key, decoded from
// EASEL_WEB_KEY (standard or URL-safe base64, padded or not), or nil when
// it is unset. A key that is not base64 or is too short is an error, which
// never shows the value.
func (s Secrets) WebSigningKey() ([]byte, error) {
	if s.WebKey == "" {
		return nil, nil
	}
	key, problem := decodeWebKey(s.WebKey)
	if problem != "" {
		return nil, fmt.Errorf("%s %s", envWebKey, problem)
	}
	return key, nil
}

// decodeWebKey returns the key v encodes, or what is wrong with it.
func decodeWebKey(v string) (key []byte, problem string) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(v); err == nil {
			if len(key) < MinWebKeyBytes {
				return nil, fmt.Sprintf("%s; it decodes to %d bytes", webKeyRule, len(key))
			}
			return key, ""
		}
	}
	return nil, webKeyRule + "; it is not base64"
}

// problems returns what is wrong with the secrets that are set; unset ones
// are MissingSecrets' concern.
func (s Secrets) problems() []*Error {
	if s.WebKey == "" {
		return nil
	}
	if _, problem := decodeWebKey(s.WebKey); problem != "" {
		return []*Error{{Key: envWebKey, Msg: problem}}
	}
	return nil
}

// secretsFrom reads the secrets through getenv, without surrounding spaces.
func secretsFrom(getenv func(string) string) Secrets {
	var s Secrets
	for _, v := range s.vars() {
		*v.value = strings.TrimSpace(getenv(v.env))
	}
	return s
}

// redact replaces the values of s in the keys and messages of problems, so
// that no error shows a secret, even one that the file repeats as the value
// of another key. Values shorter than 8 bytes are left alone: they are not
// real credentials, and replacing them could garble the messages.
func (s Secrets) redact(problems []*Error) {
	for _, v := range s.vars() {
		if len(*v.value) < 8 {
			continue
		}
		for _, p := range problems {
			p.Key = strings.ReplaceAll(p.Key, *v.value, "["+v.env+"]")
			p.Msg = strings.ReplaceAll(p.Msg, *v.value, "["+v.env+"]")
		}
	}
}

// state is what may be said about a secret's value.
func state(value string) string {
	if value == "" {
		return "unset"
	}
	return "set"
}

// String lists the secrets by environment variable with "set" or "unset",
// such as {OPENAI_API_KEY:set SLACK_BOT_TOKEN:unset …}.
func (s Secrets) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range s.vars() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v.env + ":" + state(*v.value))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String in the shape of a Go literal, for %#v, such as
// config.Secrets{OpenAIKey:set, SlackBotToken:unset, …}.
func (s Secrets) GoString() string {
	var b strings.Builder
	b.WriteString("config.Secrets{")
	for i, v := range s.vars() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.field + ":" + state(*v.value))
	}
	b.WriteByte('}')
	return b.String()
}

// Format implements fmt.Formatter so that every verb, not only %v and %s,
// prints GoString for %#v and String otherwise.
func (s Secrets) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue implements slog.LogValuer: a group of "set" or "unset" by
// environment variable.
func (s Secrets) LogValue() slog.Value {
	vars := s.vars()
	attrs := make([]slog.Attr, len(vars))
	for i, v := range vars {
		attrs[i] = slog.String(v.env, state(*v.value))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes "set" or "unset" by environment variable, so that a
// Config logged by slog's JSON handler, which encodes it with encoding/json,
// does not reveal the values.
func (s Secrets) MarshalJSON() ([]byte, error) {
	states := make(map[string]string)
	for _, v := range s.vars() {
		states[v.env] = state(*v.value)
	}
	return json.Marshal(states)
}
