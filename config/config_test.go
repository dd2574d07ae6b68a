package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// env returns a getenv that knows only vars.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// writeFile writes doc to cfg.toml in a temporary directory and returns its path.
func writeFile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problemsOf returns the *Error values joined in err.
func problemsOf(t *testing.T, err error) []*Error {
	t.Helper()
	var errs []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	problems := make([]*Error, len(errs))
	for i, e := range errs {
		if !errors.As(e, &problems[i]) {
			t.Fatalf("error %d is a %T, not an *Error: %v", i, e, e)
		}
	}
	return problems
}

func TestExampleFile(t *testing.T) {
	const path = "../config.example.toml"
	cfg, err := Load(path, env(nil))
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}

	// Its values are the defaults, but for the platforms it enables.
	want := DefaultConfig()
	want.Slack.Enabled, want.Discord.Enabled = true, true
	want.Styles = map[string]Style{"brand": {Prompt: "flat vector illustration, teal and coral palette, soft grain",
		Flags: "--ar 16:9 --quality high", References: []string{}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("%s differs from DefaultConfig:\n got %+v\nwant %+v", path, cfg, want)
	}

	// It has every key of Config, and every price field in every entry.
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := toml.Unmarshal(doc, &tree); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, typ reflect.Type, table map[string]any)
	walk = func(prefix string, typ reflect.Type, table map[string]any) {
		for f := range typ.Fields() {
			key := f.Tag.Get("toml")
			if key == "-" {
				continue
			}
			value, ok := table[key]
			if !ok {
				t.Errorf("%s lacks the key %s%s", path, prefix, key)
				continue
			}
			switch f.Type.Kind() {
			case reflect.Struct:
				walk(prefix+key+".", f.Type, value.(map[string]any))
			case reflect.Map:
				entries := value.(map[string]any)
				if len(entries) == 0 {
					t.Errorf("%s has no entry under %s%s", path, prefix, key)
				}
				for name, entry := range entries {
					walk(prefix+key+"."+formatKey(name)+".", f.Type.Elem(), entry.(map[string]any))
				}
			}
		}
	}
	walk("", reflect.TypeFor[Config](), tree)

	// Every key-value is explained by a comment on its line or the line above.
	keys, syntax := indexKeys(doc)
	if syntax != nil {
		t.Fatal(syntax)
	}
	lines := strings.Split(string(doc), "\n")
	for _, def := range keys.defs {
		if def.kind == unstable.Table {
			continue
		}
		if !strings.Contains(lines[def.line-1], "#") && (def.line < 2 || !strings.HasPrefix(lines[def.line-2], "#")) {
			t.Errorf("%s:%d: %s has no comment", path, def.line, formatKey(def.path...))
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	if got := cfg.ProviderName(); got != ProviderPreview {
		t.Errorf("ProviderName() = %q, want %q", got, ProviderPreview)
	}
	if got := cfg.MissingSecrets(); got != nil {
		t.Errorf("MissingSecrets() = %q, want none", got)
	}
	// Load without a file is DefaultConfig plus the environment.
	loaded, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded, cfg) {
		t.Errorf("Load(\"\") = %+v, want %+v", loaded, cfg)
	}
	// Each call returns its own maps and slices.
	cfg.OpenAI.Prices["gpt-image-2"] = Price{}
	if DefaultConfig().OpenAI.Prices["gpt-image-2"] == (Price{}) {
		t.Error("DefaultConfig shares its prices map between calls")
	}
}

func TestLoadEnvironment(t *testing.T) {
	path := writeFile(t, `
[storage]
dir = "/from/file"
[openai]
base_url = "http://file.example/v1"
model = "gpt-image-1.5"
`)
	cfg, err := Load(path, env(map[string]string{
		"OPENAI_API_KEY":       " sk-test-key\n",
		"OPENAI_BASE_URL":      "http://127.0.0.1:8080/v1",
		"EASEL_DATA_DIR":       "/from/env",
		"SLACK_BOT_TOKEN":      "xoxb-test",
		"SLACK_APP_TOKEN":      "xapp-test",
		"SLACK_SIGNING_SECRET": "signing-test",
		"DISCORD_BOT_TOKEN":    "discord-test",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpenAI.BaseURL != "http://127.0.0.1:8080/v1" {
		t.Errorf("openai.base_url = %q, want OPENAI_BASE_URL's value", cfg.OpenAI.BaseURL)
	}
	if cfg.Storage.Dir != "/from/env" {
		t.Errorf("storage.dir = %q, want EASEL_DATA_DIR's value", cfg.Storage.Dir)
	}
	if cfg.OpenAI.Model != "gpt-image-1.5" {
		t.Errorf("openai.model = %q, want the file's value", cfg.OpenAI.Model)
	}
	want := Secrets{
		OpenAIKey:          "sk-test-key",
		SlackBotToken:      "xoxb-test",
		SlackAppToken:      "xapp-test",
		SlackSigningSecret: "signing-test",
		DiscordBotToken:    "discord-test",
	}
	if cfg.Secrets != want {
		t.Error("Secrets differ from the environment's values (trimmed)")
	}
	if got := cfg.ProviderName(); got != ProviderOpenAI {
		t.Errorf("ProviderName() with OPENAI_API_KEY = %q, want %q", got, ProviderOpenAI)
	}

	// Without the environment the file's values stand.
	cfg, err = Load(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpenAI.BaseURL != "http://file.example/v1" || cfg.Storage.Dir != "/from/file" {
		t.Errorf("without the environment: base_url %q, dir %q; want the file's", cfg.OpenAI.BaseURL, cfg.Storage.Dir)
	}
	if cfg.Secrets != (Secrets{}) {
		t.Errorf("Secrets without the environment = %v, want none set", cfg.Secrets)
	}
}

func TestLoadEnvironmentErrors(t *testing.T) {
	// A bad value from the environment is reported under the variable's name.
	path := writeFile(t, "[openai]\nbase_url = \"https://api.openai.com/v1\"\n")
	_, err := Load(path, env(map[string]string{"OPENAI_BASE_URL": "ftp://user:hunter2@proxy/v1"}))
	want := `OPENAI_BASE_URL: must be an absolute http(s) URL, got "ftp://proxy/v1"`
	if err == nil || err.Error() != want {
		t.Errorf("Load with a bad OPENAI_BASE_URL: %v, want %s", err, want)
	}
	// A bad value in the file that the environment overrides does not matter.
	path = writeFile(t, "[openai]\nbase_url = \"not a url\"\n")
	if _, err := Load(path, env(map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})); err != nil {
		t.Errorf("Load with a bad base_url overridden by OPENAI_BASE_URL: %v", err)
	}
	_, err = Load("", env(map[string]string{"EASEL_DATA_DIR": "/data", "OPENAI_BASE_URL": "http://[::1/v1"}))
	if err == nil || !strings.HasPrefix(err.Error(), "OPENAI_BASE_URL: not a valid URL: ") {
		t.Errorf("Load with an unparsable OPENAI_BASE_URL: %v", err)
	}
}

func TestSlackOAuthSettings(t *testing.T) {
	key := "c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE=" // 32 bytes
	oauth := map[string]string{"SLACK_CLIENT_ID": "123.456", "SLACK_CLIENT_SECRET": "the-client-secret", "EASEL_TOKEN_KEY": key, "SLACK_APP_TOKEN": "xapp-1"}
	// Installing through OAuth needs the web server and its public URL.
	path := writeFile(t, "[slack]\nenabled = true\n")
	_, err := Load(path, env(oauth))
	if err == nil || !strings.Contains(err.Error(), "web.listen: must be set when SLACK_CLIENT_ID is set") ||
		!strings.Contains(err.Error(), "web.public_url: must be set when SLACK_CLIENT_ID is set") {
		t.Errorf("OAuth without the web server: %v", err)
	}
	path = writeFile(t, "[slack]\nenabled = true\n[web]\nlisten = \":8080\"\npublic_url = \"https://easel.example.com\"\n")
	cfg, err := Load(path, env(oauth))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secrets.SlackClientID != "123.456" || cfg.Secrets.SlackClientSecret != "the-client-secret" || cfg.Secrets.TokenKey != key {
		t.Error("the OAuth secrets were not read from the environment")
	}
	if got := cfg.MissingSecrets(); got != nil {
		t.Errorf("MissingSecrets() = %q; no SLACK_BOT_TOKEN is needed with OAuth", got)
	}
	// A token key that is not 32 bytes of base64 is refused, unshown.
	for _, bad := range []string{"not-base64-at-all!", "c2hvcnQta2V5"} {
		oauth["EASEL_TOKEN_KEY"] = bad
		_, err = Load(path, env(oauth))
		if err == nil || !strings.Contains(err.Error(), "EASEL_TOKEN_KEY: the token key") || !strings.Contains(err.Error(), "openssl rand -base64 32") || strings.Contains(err.Error(), bad) {
			t.Errorf("EASEL_TOKEN_KEY %q: %v", bad, err)
		}
	}
	// The secrets are refused in the file.
	path = writeFile(t, "[slack]\nclient_secret = \"in-the-file\"\n")
	if _, err = Load(path, env(nil)); err == nil || !strings.Contains(err.Error(), "set SLACK_CLIENT_SECRET") {
		t.Errorf("a client secret in the file: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"), env(nil))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(absent file) = %v, want an error matching os.ErrNotExist", err)
	}
}

// TestLoadBoundsTheFile: a file over MaxFileSize is refused without being
// read; one of exactly MaxFileSize loads.
func TestLoadBoundsTheFile(t *testing.T) {
	dir := t.TempDir()
	doc := "[storage]\ndir = \"/data\"\n#"
	exact := filepath.Join(dir, "exact.toml")
	if err := os.WriteFile(exact, []byte(doc+strings.Repeat("x", MaxFileSize-len(doc))), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load(exact, env(nil)); err != nil || cfg.Storage.Dir != "/data" {
		t.Errorf("a file of exactly MaxFileSize: dir %q, err %v", cfg.Storage.Dir, err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 200<<20); err != nil { // sparse: 200 MiB on no disk
		t.Fatal(err)
	}
	_, err := Load(big, env(nil))
	if want := "config: read " + big + ": is 200.0 MiB, over the limit of 1.0 MiB"; err == nil || err.Error() != want {
		t.Errorf("a 200 MiB file: err = %v\nwant %s", err, want)
	}
	if !errors.As(err, new(*fs.PathError)) {
		t.Errorf("err %v does not wrap an *fs.PathError", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // each problem as Error() writes it, without the file name
	}{
		{
			name: "unterminated string",
			doc:  "[slack]\nenabled = true\nmode = \"socket\n",
			want: []string{`:3: slack.mode: syntax error: basic strings cannot have new lines`},
		},
		{
			name: "value without quotes, after a comment and a dotted key",
			doc:  "[openai]\n# the model\nprices.x.output = 1\n\n  # more\nmodel = gpt-image-2\n",
			want: []string{`:6: openai.model: syntax error: unexpected character U+0067 'g' at start of value`},
		},
		{
			name: "bad element in a multi-line array",
			doc:  "[engine]\nadmins = [\n  \"U1\",\n  \"U2\" \"U3\",\n]\n",
			want: []string{`:4: engine.admins: syntax error: expected ',' or ']' after array value`},
		},
		{
			name: "byte order mark",
			doc:  "\ufeff[slack]\nmode = \"sockets\"\n",
			want: []string{`:2: slack.mode: must be "socket" or "http", got "sockets"`},
		},
		{
			name: "unclosed table header",
			doc:  "[slack\nmode = \"http\"\n",
			want: []string{`:1: syntax error: expected ']' to close table name`},
		},
		{
			name: "styles",
			doc: "[styles.Brand]\nprompt = \"x\"\n\n[styles.a]\nprompt = \"x --ar 1:1\"\n\n[styles.b]\nflags = \"--n 2\"\n\n" +
				"[styles.c]\nflags = \"--provider midjourney\"\nreferences = [\"1\", \"2\", \"3\", \"4\", \"\"]\n\n[styles.d]\n",
			want: []string{
				`:1: styles.Brand: the name must be 1 to 32 lower-case letters, digits, - or _`,
				`:5: styles.a.prompt: must be words only; put flags in styles.a.flags`,
				`:7: styles.b: a style can't set --n: it belongs to a single request`,
				`:11: styles.c.flags: --provider must be "openai", "openai-responses" or "preview", got "midjourney"`,
				`:12: styles.c.references: at most 4 images, got 5`,
				`:12: styles.c.references: entry 5 is empty`,
				`:14: styles.d: the style d is empty: give words to add to prompts and/or flags, e.g. ` + "`flat vector art, brand colours --ar 16:9 --quality high`",
			},
		},
		{
			name: "string for an integer",
			doc:  "[engine]\nmax_concurrent = \"four\"\n",
			want: []string{`:2: engine.max_concurrent: must be an integer, got a string`},
		},
		{
			name: "all wrong types at once",
			doc:  "[discord]\nguilds = [1, 2]\nenabled = \"yes\"\n[openai]\nstream = 1\nprices = []\n[log]\nlevel = { name = \"info\" }\n",
			want: []string{
				`:2: discord.guilds: must be an array of strings, got an array of integers`,
				`:3: discord.enabled: must be true or false, got a string`,
				`:5: openai.stream: must be true or false, got an integer`,
				`:6: openai.prices: must be a table, got an empty array`,
				`:8: log.level: must be a string, got a table`,
			},
		},
		{
			name: "value for a table",
			doc:  "engine = 4\n",
			want: []string{`:1: engine: must be a table, got an integer`},
		},
		{
			name: "unknown key",
			doc:  "[openai]\nmodel = \"gpt-image-2\"\nmodle = \"gpt-image-2\"\n",
			want: []string{`:3: openai.modle: unknown key; did you mean openai.model?`},
		},
		{
			name: "unknown table, reported once",
			doc:  "[slak]\nenabled = true\nmode = \"socket\"\n[slak.more]\nx = 1\n",
			want: []string{`:1: slak: unknown table; did you mean slack?`},
		},
		{
			name: "keys are case-sensitive",
			doc:  "[Slack]\nenabled = true\n",
			want: []string{`:1: Slack: unknown table; did you mean slack?`},
		},
		{
			name: "unknown keys everywhere, with no suggestion when none is close",
			doc:  "colour = \"red\"\n[openai.prices.\"gpt-image-2\"]\ntext_input = 5\nimage_input = 8\noutptu = 30\n",
			want: []string{
				`:1: colour: unknown key`,
				`:5: openai.prices.gpt-image-2.outptu: unknown key; did you mean openai.prices.gpt-image-2.output?`,
			},
		},
		{
			name: "a secret in the file",
			doc:  "[slack]\nbot_token = \"xoxb-in-the-file\"\n",
			want: []string{`:2: slack.bot_token: unknown key; secrets are read from the environment only: set SLACK_BOT_TOKEN`},
		},
		{
			name: "secrets in the file",
			doc:  "[secrets]\nopenai_api_key = \"sk-in-the-file\"\n",
			want: []string{`:1: secrets: unknown table; secrets are read from the environment only: set OPENAI_API_KEY, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET or DISCORD_BOT_TOKEN`},
		},
		{
			name: "bad enum",
			doc:  "[slack]\nenabled = true\nmode = \"sockets\"\n",
			want: []string{`:3: slack.mode: must be "socket" or "http", got "sockets"`},
		},
		{
			name: "bad enum of more than two",
			doc:  "[log]\nlevel = \"verbose\"\n",
			want: []string{`:2: log.level: must be one of "debug", "info", "warn" or "error", got "verbose"`},
		},
		{
			name: "integer out of range",
			doc:  "[engine]\nmax_n = 11\nvariations = 4\n",
			want: []string{`:2: engine.max_n: must be between 1 and 10, got 11`},
		},
		{
			name: "integer too large",
			doc:  "[engine]\nmax_queue = 99999999999999999999\n",
			want: []string{`:2: engine.max_queue: decimal number is too large to fit in a 64-bit signed integer`},
		},
		{
			name: "relation between keys, one not in the file",
			doc:  "[engine]\nmax_n = 2\n",
			want: []string{`: engine.variations: must be between 1 and engine.max_n (2), got 4`},
		},
		{
			name: "bad URLs",
			doc:  "[openai]\nbase_url = \"api.openai.com/v1\"\n[slack]\napi_url = \"https://slack.com/api\"\n[discord]\napi_url = \"http://[::1/\"\n",
			want: []string{
				`:2: openai.base_url: must be an absolute http(s) URL, got "api.openai.com/v1"`,
				`:4: slack.api_url: must end with "/", got "https://slack.com/api"`,
				`:6: discord.api_url: not a valid URL: missing ']' in host`,
			},
		},
		{
			name: "bad duration",
			doc:  "[provider]\ntimeout = \"5 minutes\"\n",
			want: []string{`:2: provider.timeout: not a duration: "5 minutes" (write a number and a unit, such as "30s", "5m" or "1h30m")`},
		},
		{
			name: "duration without quotes",
			doc:  "[storage]\nopen_timeout = 2\n[preview]\ndelay = 1.5\n",
			want: []string{
				`:2: storage.open_timeout: must be a duration string such as "30s" or "5m", got an integer`,
				`:4: preview.delay: must be a duration string such as "30s" or "5m", got a float`,
			},
		},
		{
			name: "negative and zero durations",
			doc:  "[preview]\ndelay = \"-1s\"\n[openai]\ntimeout = \"0s\"\n",
			want: []string{
				`:2: preview.delay: must not be negative, got -1s`,
				`:4: openai.timeout: must be more than 0s, got 0s`,
			},
		},
		{
			name: "retired models",
			doc:  "[openai]\nmodel = \"gpt-image-1\"\n",
			want: []string{`:2: openai.model: "gpt-image-1" was shut down on 2026-10-23; use "gpt-image-2" (or "gpt-image-1.5", "gpt-image-1-mini")`},
		},
		{
			name: "dall-e",
			doc:  "openai.model = \"dall-e-3\"\n",
			want: []string{`:1: openai.model: "dall-e-3" is retired; use "gpt-image-2" (or "gpt-image-1.5", "gpt-image-1-mini")`},
		},
		{
			name: "price in a subtable",
			doc:  "[openai]\nmodel = \"gpt-image-2\"\n\n[openai.prices.\"gpt-image-1.5\"]\ntext_input = 5\nimage_input = -8\noutput = 32\n",
			want: []string{`:6: openai.prices."gpt-image-1.5".image_input: must be a price of 0 or more (US dollars per million tokens), got -8`},
		},
		{
			name: "price in an inline table, with a dotted key",
			doc:  "[openai]\nprices.mine = {\n  text_input = 1, image_input = 1,\n  output = nan,\n}\n",
			want: []string{`:4: openai.prices.mine.output: must be a price of 0 or more (US dollars per million tokens), got NaN`},
		},
		{
			name: "incomplete price",
			doc:  "[openai.prices.\"my-model\"]\noutput = 1\n",
			want: []string{`:1: openai.prices.my-model: missing text_input, image_input: a price gives text_input, image_input and output (US dollars per million tokens)`},
		},
		{
			name: "dotted keys and inline tables",
			doc:  "openai.max_retries = 11\nslack = { enabled = true, listen = \"3000\" }\n",
			want: []string{
				`:1: openai.max_retries: must be between 0 and 10, got 11`,
				`:2: slack.listen: must be host:port, such as ":3000" or "127.0.0.1:3000", got "3000"`,
			},
		},
		{
			name: "repeated key",
			doc:  "[log]\nlevel = \"info\"\nlevel = \"debug\"\n",
			want: []string{`:3: log.level: key level is already defined`},
		},
		{
			name: "access and quota values of the wrong type",
			doc:  "[access]\nusers = \"U1\"\nroles = [123]\ndms = \"no\"\n[quota]\nimages_per_user_day = 2.5\nadmins_exempt = 1\n",
			want: []string{
				`:2: access.users: must be an array of strings, got a string`,
				`:3: access.roles: must be an array of strings, got an array of integers`,
				`:4: access.dms: must be true or false, got a string`,
				`:6: quota.images_per_user_day: must be an integer, got a float`,
				`:7: quota.admins_exempt: must be true or false, got an integer`,
			},
		},
		{
			name: "bad access ids",
			doc:  "[access]\nworkspaces = [\"T1\", \" \"]\nchannels = [\"C 1\"]\nusers = [\"\"]\nroles = [\"123\", \"admins\"]\n",
			want: []string{
				`:2: access.workspaces: entry 2 is empty`,
				`:3: access.channels: entry 1 must be an id without spaces, such as "C0123ABCD" or "123456789012345678", got "C 1"`,
				`:4: access.users: entry 1 is empty`,
				`:5: access.roles: entry 2 must be a role id (a number such as "123456789012345678"), got "admins"`,
			},
		},
		{
			name: "negative and not-a-number quotas",
			doc:  "quota.images_per_user_day = -1\nquota.spend_per_workspace_month_usd = nan\n",
			want: []string{
				`:1: quota.images_per_user_day: must be 0 (unlimited) or more, got -1`,
				`:2: quota.spend_per_workspace_month_usd: must be 0 (unlimited) or more US dollars, got NaN`,
			},
		},
		{
			name: "stop grace out of range",
			doc:  "[engine]\nstop_grace = \"0s\"\n",
			want: []string{`:2: engine.stop_grace: must be more than 0s and at most 1h0m0s, got 0s`},
		},
		{
			name: "stop grace too long",
			doc:  "[engine]\nstop_grace = \"2h\"\n",
			want: []string{`:2: engine.stop_grace: must be more than 0s and at most 1h0m0s, got 2h0m0s`},
		},
		{
			name: "store retry out of range",
			doc:  "[engine]\nstore_retry = \"-1s\"\n",
			want: []string{`:2: engine.store_retry: must be more than 0s and at most 1h0m0s, got -1s`},
		},
		{
			name: "many problems at once, in line order",
			doc: `[provider]
default = "gemini"

[engine]
max_concurrent = 0
admins = ["U1", ""]

[slack]
mode = "http"
command = "imagine"

[discord]
guilds = ["my server"]

[log]
format = "yaml"
`,
			want: []string{
				`:2: provider.default: must be "openai", "openai-responses", "preview" or "" (automatic), got "gemini"`,
				`:5: engine.max_concurrent: must be at least 1, got 0`,
				`:6: engine.admins: entry 2 is empty`,
				`:10: slack.command: must be "/" followed by a name without spaces (at most 32 characters in all), such as "/imagine", got "imagine"`,
				`:13: discord.guilds: entry 1 must be a guild id (a number such as "123456789012345678"), got "my server"`,
				`:16: log.format: must be "text" or "json", got "yaml"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.doc)
			cfg, err := Load(path, env(nil))
			if err == nil {
				t.Fatalf("Load succeeded, want %d problems", len(tt.want))
			}
			if !reflect.DeepEqual(cfg, Config{}) {
				t.Errorf("Load returned a Config with its error: %+v", cfg)
			}
			problems := problemsOf(t, err)
			var got []string
			for _, p := range problems {
				if p.File != path {
					t.Errorf("problem %q has File %q, want %q", p, p.File, path)
				}
				got = append(got, strings.TrimPrefix(p.Error(), path))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "xoxb-in-the-file") {
				t.Errorf("the error reveals a secret: %v", err)
			}
		})
	}
}

func TestAccessAndQuota(t *testing.T) {
	path := writeFile(t, `
[engine]
stop_grace = "2m"
[access]
workspaces = ["T0123ABCD", "123456789012345678"]
channels = ["C0123ABCD"]
users = ["U012AB3CD"]
roles = ["223456789012345678"]
dms = false
[quota]
images_per_user_day = 20
spend_per_workspace_month_usd = 150
admins_exempt = false
`)
	cfg, err := Load(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	wantAccess := Access{
		Workspaces: []string{"T0123ABCD", "123456789012345678"}, Channels: []string{"C0123ABCD"},
		Users: []string{"U012AB3CD"}, Roles: []string{"223456789012345678"}, DMs: false,
	}
	if !reflect.DeepEqual(cfg.Access, wantAccess) {
		t.Errorf("access = %+v, want %+v", cfg.Access, wantAccess)
	}
	if want := (Quota{ImagesPerUserDay: 20, SpendPerWorkspaceMonthUSD: 150}); cfg.Quota != want {
		t.Errorf("quota = %+v, want %+v", cfg.Quota, want)
	}
	if cfg.Engine.StopGrace != Duration(2*time.Minute) {
		t.Errorf("engine.stop_grace = %s, want 2m", cfg.Engine.StopGrace)
	}

	// Left out, everyone is allowed, DMs included, and nothing is bounded.
	def := DefaultConfig()
	if a := def.Access; len(a.Workspaces)+len(a.Channels)+len(a.Users)+len(a.Roles) != 0 || !a.DMs {
		t.Errorf("default access = %+v, want empty lists and DMs on", a)
	}
	if def.Quota != (Quota{AdminsExempt: true}) || def.Engine.StopGrace != Duration(30*time.Second) {
		t.Errorf("default quota %+v, stop_grace %s", def.Quota, def.Engine.StopGrace)
	}
}

func TestPricesMerge(t *testing.T) {
	path := writeFile(t, `
[openai.prices]
"gpt-image-2" = { text_input = 6, image_input = 9, output = 40 }
"my-proxy-model" = { text_input = 0, image_input = 0, output = 1.5 }
`)
	cfg, err := Load(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig().OpenAI.Prices
	want["gpt-image-2"] = Price{TextInput: 6, ImageInput: 9, Output: 40}
	want["my-proxy-model"] = Price{Output: 1.5}
	if !reflect.DeepEqual(cfg.OpenAI.Prices, want) {
		t.Errorf("prices = %v, want %v", cfg.OpenAI.Prices, want)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Storage.Dir = ""
	cfg.Storage.OpenTimeout = 0
	cfg.Provider.Timeout = -1
	cfg.Engine.MaxPerUser = 0
	cfg.Engine.MaxQueue = -1
	cfg.Engine.Variations = 0
	cfg.Engine.MaxPromptChars = 0
	cfg.Engine.StopGrace = -1
	cfg.Engine.StoreRetry = Duration(2 * time.Hour)
	cfg.Attach.MaxFiles, cfg.Attach.MaxPixels = 0, 1<<30
	cfg.Images = Images{Backend: ImagesS3, S3Endpoint: "http://key:secret@s3", S3Bucket: "Easel_Images", S3Region: ""}
	cfg.Access.Users = []string{"U1", ""}
	cfg.Quota.ImagesPerUserDay = -3
	cfg.OpenAI.Model = ""
	cfg.OpenAI.ResponsesModel = "gpt-image-2"
	cfg.OpenAI.PartialImages = 4
	cfg.OpenAI.Moderation = "strict"
	cfg.OpenAI.Prices[""] = Price{TextInput: -1}
	cfg.Slack.Listen = "localhost"
	cfg.Discord.APIURL = "https://discord.com/api"
	err := cfg.Validate()
	want := []string{
		"storage.dir",
		"images.s3_endpoint",
		"images.s3_bucket",
		"images.s3_region",
		"storage.open_timeout",
		"provider.timeout",
		"engine.max_per_user",
		"engine.max_queue",
		"engine.variations",
		"engine.max_prompt_chars",
		"engine.stop_grace",
		"engine.store_retry",
		"attachments.max_files",
		"attachments.max_pixels",
		"access.users",
		"quota.images_per_user_day",
		"openai.model",
		"openai.responses_model",
		"openai.partial_images",
		"openai.moderation",
		`openai.prices.""`,
		`openai.prices."".text_input`,
		"slack.listen",
		"discord.api_url",
	}
	var got []string
	for _, p := range problemsOf(t, err) {
		if p.File != "" || p.Line != 0 {
			t.Errorf("Validate's problem %q has a file or line", p)
		}
		got = append(got, p.Key)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate reported problems with\n%q\nwant\n%q\n%v", got, want, err)
	}
}

func TestMissingSecrets(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"nothing enabled", func(*Config) {}, nil},
		{"openai chosen", func(c *Config) { c.Provider.Default = ProviderOpenAI }, []string{"OPENAI_API_KEY"}},
		{"openai chosen with its key", func(c *Config) {
			c.Provider.Default = ProviderOpenAI
			c.Secrets.OpenAIKey = "k"
		}, nil},
		{"openai-responses chosen", func(c *Config) { c.Provider.Default = ProviderOpenAIResponses }, []string{"OPENAI_API_KEY"}},
		{"slack in socket mode", func(c *Config) { c.Slack.Enabled = true }, []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}},
		{"slack in http mode", func(c *Config) {
			c.Slack.Enabled = true
			c.Slack.Mode = "http"
			c.Secrets.SlackAppToken = "unused"
		}, []string{"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}},
		{"slack with its tokens", func(c *Config) {
			c.Slack.Enabled = true
			c.Secrets.SlackBotToken, c.Secrets.SlackAppToken = "b", "a"
		}, nil},
		{"slack installed through OAuth", func(c *Config) {
			c.Slack.Enabled = true
			c.Secrets.SlackClientID, c.Secrets.SlackAppToken = "id", "a"
		}, []string{"SLACK_CLIENT_SECRET", "EASEL_TOKEN_KEY"}},
		{"slack installed through OAuth with its secrets", func(c *Config) {
			c.Slack.Enabled = true
			c.Secrets.SlackClientID, c.Secrets.SlackClientSecret, c.Secrets.TokenKey, c.Secrets.SlackAppToken = "id", "s", "k", "a"
		}, nil},
		{"everything", func(c *Config) {
			c.Provider.Default = ProviderOpenAI
			c.Slack.Enabled = true
			c.Discord.Enabled = true
		}, []string{"OPENAI_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_BOT_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			if got := cfg.MissingSecrets(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MissingSecrets() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProviderName(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Provider.Default = ProviderPreview
	cfg.Secrets.OpenAIKey = "k"
	if got := cfg.ProviderName(); got != ProviderPreview {
		t.Errorf("ProviderName() = %q with provider.default = \"preview\" and a key, want preview", got)
	}
	cfg.Provider.Default = ""
	if got := cfg.ProviderName(); got != ProviderOpenAI {
		t.Errorf("ProviderName() = %q, automatic with a key, want openai", got)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	cfg := DefaultConfig()
	secrets := []string{"sk-SECRET1", "xoxb-SECRET2", "xapp-SECRET3", "SECRET4", "SECRET5", "postgres://easel:SECRET6@db/easel", "AKIASECRET7", "SECRET8SECRET8",
		"SECRET9.SECRET9", "SECRET10SECRET10", "SECRET11SECRET11SECRET11SECRET11SECRET11SE=", "U0VDUkVUOVNFQ1JFVDlTRUNSRVQ5U0VDUkVUOVNFQ1JFVDk="}
	for i, v := range cfg.Secrets.vars() {
		*v.value = secrets[i]
	}
	cfg.Secrets.DiscordBotToken = ""

	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		fmt.Fprintf(&out, verb+"\n", cfg)
		fmt.Fprintf(&out, verb+"\n", cfg.Secrets)
		fmt.Fprintf(&out, verb+"\n", &cfg)
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(h).Info("loaded", "config", cfg, "secrets", cfg.Secrets, "ptr", &cfg)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	tm, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(tm)
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Fatalf("output reveals %q:\n%s", s, out.String())
		}
	}
	for _, want := range []string{
		"{OPENAI_API_KEY:set SLACK_BOT_TOKEN:set SLACK_APP_TOKEN:set SLACK_SIGNING_SECRET:set DISCORD_BOT_TOKEN:unset EASEL_POSTGRES_URL:set AWS_ACCESS_KEY_ID:set AWS_SECRET_ACCESS_KEY:set SLACK_CLIENT_ID:set SLACK_CLIENT_SECRET:set EASEL_TOKEN_KEY:set EASEL_WEB_KEY:set}",
		"config.Secrets{OpenAIKey:set, SlackBotToken:set, SlackAppToken:set, SlackSigningSecret:set, DiscordBotToken:unset, PostgresURL:set, AWSAccessKeyID:set, AWSSecretAccessKey:set, SlackClientID:set, SlackClientSecret:set, TokenKey:set, WebKey:set}",
		"secrets.OPENAI_API_KEY=set",
		`"secrets":{"OPENAI_API_KEY":"set"`,
		`"DISCORD_BOT_TOKEN":"unset"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}

	// Nor do Load's errors show them, even a value from the file that repeats one.
	path := writeFile(t, "[slack]\nmode = \"xoxb-SECRET2\"\n")
	_, err = Load(path, env(map[string]string{"SLACK_BOT_TOKEN": "xoxb-SECRET2", "OPENAI_BASE_URL": "gopher://u:sk-SECRET1@h/?key=sk-SECRET1"}))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error reveals %q: %v", s, err)
		}
	}
	if want := `got "[SLACK_BOT_TOKEN]"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %s: %v", want, err)
	}
}

func TestWebSigningKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32) // encodes to + and / (- and _ URL-safe)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		cfg, err := Load("", env(map[string]string{"EASEL_WEB_KEY": " " + enc.EncodeToString(key) + "\n"}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := cfg.Secrets.WebSigningKey()
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("WebSigningKey() = %x, %v; want %x", got, err, key)
		}
	}
	cfg, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.Secrets.WebSigningKey(); got != nil || err != nil {
		t.Errorf("WebSigningKey() unset = %x, %v; want nil, nil", got, err)
	}
	for value, want := range map[string]string{
		base64.StdEncoding.EncodeToString([]byte("short-but-secret-key-31-bytes!!")): "it decodes to 31 bytes",
		"not base64 at all, but a secret passphrase":                                 "it is not base64",
	} {
		_, err := Load("", env(map[string]string{"EASEL_WEB_KEY": value}))
		if err == nil {
			t.Fatalf("Load with EASEL_WEB_KEY %q succeeded", value)
		}
		if msg := err.Error(); !strings.Contains(msg, "EASEL_WEB_KEY: must be base64 of at least 32 random bytes") || !strings.Contains(msg, want) || strings.Contains(msg, value) {
			t.Errorf("Load with EASEL_WEB_KEY %q: %v; want the rule and %q, without the value", value, err, want)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d != Duration(90*time.Minute) {
		t.Errorf("UnmarshalText(1h30m) = %v, %v", d, err)
	}
	text, err := d.MarshalText()
	if err != nil || string(text) != "1h30m0s" {
		t.Errorf("MarshalText = %q, %v", text, err)
	}
	if err := d.UnmarshalText([]byte("90")); err == nil {
		t.Error("UnmarshalText(90) succeeded; a duration needs a unit")
	}
}

func TestDecodeErrorFallback(t *testing.T) {
	// go-toml's strict mode backs up the schema check; its errors also get
	// full keys and lines.
	doc := []byte("[openai]\nprices = { x = { output = 1, extra = 2 } }\n")
	keys, syntax := indexKeys(doc)
	if syntax != nil {
		t.Fatal(syntax)
	}
	var narrow struct {
		OpenAI struct {
			Prices map[string]struct {
				Output float64 `toml:"output"`
			} `toml:"prices"`
		} `toml:"openai"`
	}
	err := toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields().Decode(&narrow)
	got := keys.decodeProblems(err)
	want := []*Error{{Line: 2, Key: "openai.prices.x.extra", Msg: "unknown field"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeProblems(%v) = %v, want %v", err, got, want)
	}
}

func TestDiscordShards(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want Shards
		err  string
	}{
		{doc: "", want: ShardsAuto},
		{doc: `shards = "auto"`, want: ShardsAuto},
		{doc: `shards = 4`, want: 4},
		{doc: `shards = "2"`, want: 2},
		{doc: `shards = 0`, err: `:2: discord.shards: must be "auto" or a number of shards from 1 to 4096, got 0`},
		{doc: `shards = -1`, err: `:2: discord.shards: must be "auto" or a number of shards from 1 to 4096, got -1`},
		{doc: `shards = 5000`, err: `:2: discord.shards: must be "auto" or a number of shards from 1 to 4096, got 5000`},
		{doc: `shards = "many"`, err: `:2: discord.shards: must be "auto" or a number of shards from 1 to 4096, got many`},
		{doc: `shards = 1.5`, err: `:2: discord.shards: must be "auto" or a number of shards, got a float`},
	} {
		path := filepath.Join(t.TempDir(), "easel.toml")
		if err := os.WriteFile(path, []byte("[discord]\n"+c.doc+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path, func(string) string { return "" })
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %s", c.doc, err, c.err)
			}
			continue
		}
		if err != nil || cfg.Discord.Shards != c.want {
			t.Errorf("%s: shards %v, err %v; want %v", c.doc, cfg.Discord.Shards, err, c.want)
		}
	}
}
