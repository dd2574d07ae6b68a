// Package config is Easel's configuration: one TOML file, documented key by
// key in config.example.toml at the repository root, plus environment
// variables for the secrets, which never come from the file.
//
// Load reads a file over DefaultConfig, applies the environment and checks
// the result; every problem it reports is an *Error naming the key and, for
// keys in the file, the line.
package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/responses"
	"github.com/easel-bot/easel/internal/regfile"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/postgres"
)

// Config is the whole configuration of an Easel process.
type Config struct {
	Storage  Storage          `toml:"storage"`
	Images   Images           `toml:"images"`
	Provider Provider         `toml:"provider"`
	Engine   Engine           `toml:"engine"`
	Access   Access           `toml:"access"`
	Quota    Quota            `toml:"quota"`
	Styles   map[string]Style `toml:"styles"`
	OpenAI   OpenAI           `toml:"openai"`
	Preview  Preview          `toml:"preview"`
	Attach   Attach           `toml:"attachments"`
	Slack    Slack            `toml:"slack"`
	Discord  Discord          `toml:"discord"`
	Web      Web              `toml:"web"`
	Log      Log              `toml:"log"`
	Secrets  Secrets          `toml:"-"` // from the environment only, never from the file
}

// Storage backends.
const (
	StorageBbolt    = "bbolt"
	StoragePostgres = "postgres"
)

// Storage says where sessions and images are kept.
type Storage struct {
	// Backend keeps the sessions: "bbolt" (a file in Dir, for one process)
	// or "postgres" (at EASEL_POSTGRES_URL, for several replicas).
	Backend string `toml:"backend"`
	// Lease is, with backend "postgres", how long a replica's hold on a
	// session, a provider slot or a delivery outlives its last renewal: a
	// replica that freezes loses them within it (one that is killed at
	// once), and another takes its work over.
	Lease Duration `toml:"lease"`
	// Dir holds the bbolt database and the image files. EASEL_DATA_DIR
	// overrides it.
	Dir string `toml:"dir"`
	// OpenTimeout is how long to wait for the lock on the database, which
	// another Easel process may hold, before giving up with an error.
	OpenTimeout Duration `toml:"open_timeout"`
}

// Image store backends.
const (
	ImagesDir = "dir"
	ImagesS3  = "s3"
)

// Images says where image bytes are kept.
type Images struct {
	// Backend is "dir" (storage.dir's images/, the default) or "s3" (an
	// S3-compatible object store, with AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY).
	Backend string `toml:"backend"`
	// S3Endpoint is the object store's URL, such as
	// "https://s3.eu-west-1.amazonaws.com" or "http://127.0.0.1:7070".
	S3Endpoint string `toml:"s3_endpoint"`
	// S3Bucket holds the images; it is created if missing.
	S3Bucket string `toml:"s3_bucket"`
	// S3Region is the bucket's region.
	S3Region string `toml:"s3_region"`
}

// Provider chooses the image provider used when a prompt names none.
type Provider struct {
	// Default is "openai", "openai-responses", "preview", or "" to choose
	// automatically: see Config.ProviderName.
	Default string `toml:"default"`
	// Timeout bounds one whole turn, retries included.
	Timeout Duration `toml:"timeout"`
}

// Engine limits how much work Easel takes on.
type Engine struct {
	// MaxConcurrent bounds the provider calls in flight across all sessions.
	MaxConcurrent int `toml:"max_concurrent"`
	// MaxPerUser bounds one user's queued and running turns.
	MaxPerUser int `toml:"max_per_user"`
	// MaxQueue bounds the turns waiting in one session.
	MaxQueue int `toml:"max_queue"`
	// Variations is how many images the Variations button asks for.
	Variations int `toml:"variations"`
	// MaxN is the largest --n a prompt may ask for.
	MaxN int `toml:"max_n"`
	// MaxPromptChars is the longest prompt accepted, in characters.
	MaxPromptChars int `toml:"max_prompt_chars"`
	// StrictRegion is the default of --strict-region: a region edit's
	// result is composited onto the image it edits, so nothing outside the
	// region changes.
	StrictRegion bool `toml:"strict_region"`
	// Admins are the platform user ids that may press anyone's buttons.
	// They also pass every list of Access and, if Quota.AdminsExempt, every
	// quota.
	Admins []string `toml:"admins"`
	// StopGrace is how long `easel run` lets running turns finish after
	// SIGINT or SIGTERM before it stops them; they resume on the next start.
	StopGrace Duration `toml:"stop_grace"`
	// StoreRetry is how long a running turn retries a failing store (a
	// full disk) before Easel gives up on its thread until a message can be
	// recorded there again.
	StoreRetry Duration `toml:"store_retry"`
}

// Access says who may use Easel, and where. An empty list allows everyone;
// a non-empty one allows only its members, and a request must pass every
// non-empty list. Admins (Engine.Admins, and on Discord members with the
// Administrator permission or a role in Discord.AdminRoles) pass them all.
type Access struct {
	// Workspaces are the Slack team ids and Discord guild (server) ids
	// allowed. A Discord DM belongs to no guild, so it fails a non-empty
	// list.
	Workspaces []string `toml:"workspaces"`
	// Channels are the channel ids allowed. A Discord thread counts as its
	// parent channel; direct messages are governed by DMs, not by this list.
	Channels []string `toml:"channels"`
	// Users are the Slack and Discord user ids allowed.
	Users []string `toml:"users"`
	// Roles are the Discord role ids allowed: a member needs one of them.
	// Slack has no roles, so it does not apply there; a Discord DM shows no
	// roles, so it fails a non-empty list.
	Roles []string `toml:"roles"`
	// DMs allows direct messages to the bot.
	DMs bool `toml:"dms"`
}

// Style is one [styles.NAME] table: a look every workspace may use with
// --style NAME. Chat cannot change or delete it, and admins cannot take
// its name for a style of their own.
type Style struct {
	// Prompt is added to the prompt of every request that uses the style.
	Prompt string `toml:"prompt"`
	// Flags are the style's flags: any of --ar, --size, --quality,
	// --model, --provider, --format, --transparent and --no.
	Flags string `toml:"flags"`
	// References are up to four image files sent with every request that
	// uses the style; they are read, checked and stored at start.
	References []string `toml:"references"`
}

// Spec returns the style's definition as an admin types it in chat.
func (s Style) Spec() string { return strings.TrimSpace(s.Prompt + " " + s.Flags) }

// Quota bounds what users and workspaces may spend. Zero means unlimited.
type Quota struct {
	// ImagesPerUserDay bounds the images one user may make per UTC day.
	ImagesPerUserDay int `toml:"images_per_user_day"`
	// SpendPerWorkspaceMonthUSD bounds the estimated spend (from the prices
	// of OpenAI.Prices) of one Slack workspace or Discord guild per UTC
	// month, in US dollars.
	SpendPerWorkspaceMonthUSD float64 `toml:"spend_per_workspace_month_usd"`
	// AdminsExempt exempts admins from both bounds.
	AdminsExempt bool `toml:"admins_exempt"`
}

// OpenAI configures the OpenAI providers: "openai" (the Images API) and
// "openai-responses" (the Responses API's image_generation tool), which
// share every key but ResponsesModel and Store. Their key is
// Secrets.OpenAIKey.
type OpenAI struct {
	// BaseURL is the API root, such as "https://api.openai.com/v1".
	// OPENAI_BASE_URL overrides it.
	BaseURL string `toml:"base_url"`
	// Model is the image model used when a prompt names none.
	Model string `toml:"model"`
	// ResponsesModel is openai-responses' conversation model: the GPT model
	// that reads the thread, answers in words or calls the image model.
	ResponsesModel string `toml:"responses_model"`
	// Store keeps openai-responses' answers on OpenAI's side, so each turn
	// sends only its new message; off, each turn resends the thread's text
	// and the image being refined.
	Store bool `toml:"store"`
	// Timeout bounds one HTTP attempt.
	Timeout Duration `toml:"timeout"`
	// MaxRetries is how many times a failed attempt is retried.
	MaxRetries int `toml:"max_retries"`
	// Stream asks for partial images while a picture renders.
	Stream bool `toml:"stream"`
	// PartialImages is how many partial images to stream (0 to 3).
	PartialImages int `toml:"partial_images"`
	// Moderation is the strictness of OpenAI's moderation: "auto" or "low".
	Moderation string `toml:"moderation"`
	// Prices estimate what each model costs, by model name: the image
	// models and openai-responses' conversation models. Entries from the
	// file replace the built-in entry for their model; the built-in entries
	// of models the file does not mention stay.
	Prices map[string]Price `toml:"prices"`
}

// Price is what a model costs, in US dollars per million tokens. Easel uses
// it to estimate costs for display and budgets; it is not billing data.
type Price struct {
	TextInput  float64 `toml:"text_input"`
	ImageInput float64 `toml:"image_input"`
	Output     float64 `toml:"output"`
}

// Attach bounds the images attached to a prompt (used as inputs), on
// every platform.
type Attach struct {
	// MaxFiles bounds the images of one message.
	MaxFiles int `toml:"max_files"`
	// MaxSizeMB bounds one image's size in MiB; a larger one is refused
	// before it is read.
	MaxSizeMB int `toml:"max_size_mb"`
	// MaxSide bounds an image's width and height in pixels, MaxPixels
	// their product; both are read from the header before any decoding.
	MaxSide   int `toml:"max_side"`
	MaxPixels int `toml:"max_pixels"`
}

// Limits returns a's bounds as imagecheck takes them.
func (a Attach) Limits() imagecheck.Limits {
	return imagecheck.Limits{MaxBytes: int64(a.MaxSizeMB) << 20, MaxSide: a.MaxSide, MaxPixels: int64(a.MaxPixels), MaxFiles: a.MaxFiles}
}

// Preview configures the offline preview renderer.
type Preview struct {
	// Delay is a simulated rendering time, for demos and load tests.
	Delay Duration `toml:"delay"`
}

// Slack configures the Slack adapter. Its tokens are in Secrets.
type Slack struct {
	// Enabled starts the adapter.
	Enabled bool `toml:"enabled"`
	// Mode is "socket" (Socket Mode: no public URL needed) or "http" (the
	// Events API, served on Listen).
	Mode string `toml:"mode"`
	// Listen is the address the Events API is served on in http mode.
	Listen string `toml:"listen"`
	// APIURL is the Web API root, ending with "/".
	APIURL string `toml:"api_url"`
	// Command is the slash command, such as "/imagine".
	Command string `toml:"command"`
}

// Discord configures the Discord adapter. Its token is in Secrets.
type Discord struct {
	// Enabled starts the adapter.
	Enabled bool `toml:"enabled"`
	// APIURL is the REST API root, ending with "/". The gateway URL comes
	// from the API.
	APIURL string `toml:"api_url"`
	// Guilds are the guild ids where /imagine is registered, which takes
	// effect at once; with none it is registered globally.
	Guilds []string `toml:"guilds"`
	// MessageContent requests the privileged Message Content intent, without
	// which replies in a thread must mention Easel.
	MessageContent bool `toml:"message_content"`
	// AdminRoles are role ids whose members may press the buttons on
	// anyone's images, besides engine.admins and members with Discord's
	// Administrator permission.
	AdminRoles []string `toml:"admin_roles"`
	// Shards is how many gateway shards the bot runs: ShardsAuto (the
	// number Discord recommends in GET /gateway/bot) or a number. The
	// replicas on one PostgreSQL database spread them between them; a
	// single process holds them all.
	Shards Shards `toml:"shards"`
}

// Shards is discord.shards: "auto" (ShardsAuto, written as such) or a
// number of shards.
type Shards int

// ShardsAuto is discord.shards = "auto": a value no integer in a file
// is taken for.
const ShardsAuto Shards = math.MinInt

// MaxShards bounds discord.shards: far beyond what Discord asks of the
// largest bots that are not given a shard count of their own.
const MaxShards = 4096

// String returns "auto" or the number.
func (s Shards) String() string {
	if s == ShardsAuto {
		return "auto"
	}
	return strconv.Itoa(int(s))
}

// MarshalText returns s as String does; UnmarshalText reads it back.
func (s Shards) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads "auto" or a number from 1 to MaxShards, written
// with or without quotes.
func (s *Shards) UnmarshalText(text []byte) error {
	if string(text) == "auto" {
		*s = ShardsAuto
		return nil
	}
	n, err := strconv.Atoi(string(text))
	if err != nil || n < 1 || n > MaxShards {
		return shardsError(string(text))
	}
	*s = Shards(n)
	return nil
}

func shardsError(got string) error {
	return fmt.Errorf(`must be "auto" or a number of shards from 1 to %d, got %s`, MaxShards, got)
}

// Count returns the number of shards, or 0 for "auto".
func (s Shards) Count() int { return max(int(s), 0) }

// Web configures the web server of `easel run`: the operations endpoints
// and the pages mounted beside them.
type Web struct {
	// Listen is the server's address, host:port or :port; "" (the
	// default) runs no web server.
	Listen string `toml:"listen"`
	// PublicURL is where people and Slack reach the server from outside,
	// such as "https://easel.example.com", for the links Easel makes to
	// it; "" if it is not reachable from outside.
	PublicURL string `toml:"public_url"`
}

// Log configures logging.
type Log struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
	// Format is "text" or "json".
	Format string `toml:"format"`
}

// Duration is a time.Duration that configuration files write as a string in
// time.ParseDuration's syntax, such as "30s", "5m" or "1h30m".
type Duration time.Duration

// String returns d in time.Duration's format, such as "5m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText returns d as String does; UnmarshalText reads it back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration such as "30s". Its error quotes text and
// shows the expected syntax.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf(`not a duration: %q (write a number and a unit, such as "30s", "5m" or "1h30m")`, text)
	}
	*d = Duration(v)
	return nil
}

// MaxStopGrace is the longest engine.stop_grace allowed.
const MaxStopGrace = time.Hour

// MaxStoreRetry is the longest engine.store_retry allowed.
const MaxStoreRetry = time.Hour

// Providers that provider.default may name.
const (
	ProviderOpenAI          = "openai"
	ProviderOpenAIResponses = "openai-responses"
	ProviderPreview         = "preview"
)

// DefaultConfig returns the configuration used for every key a file leaves
// out. Each call returns new slices and maps.
func DefaultConfig() Config {
	return Config{
		Images:   Images{Backend: ImagesDir, S3Bucket: "easel", S3Region: "us-east-1"},
		Storage:  Storage{Backend: StorageBbolt, Lease: Duration(postgres.DefaultLease), Dir: "./easel-data", OpenTimeout: Duration(storage.DefaultOpenTimeout)},
		Provider: Provider{Default: "", Timeout: Duration(core.DefaultTurnTimeout)},
		Engine: Engine{
			MaxConcurrent:  core.DefaultMaxConcurrent,
			MaxPerUser:     core.DefaultMaxPerUser,
			MaxQueue:       core.DefaultMaxQueue,
			Variations:     core.DefaultVariations,
			MaxN:           core.DefaultMaxN,
			MaxPromptChars: core.DefaultMaxPromptChars,
			Admins:         []string{},
			StopGrace:      Duration(30 * time.Second),
			StoreRetry:     Duration(core.DefaultStoreRetry),
		},
		Access: Access{Workspaces: []string{}, Channels: []string{}, Users: []string{}, Roles: []string{}, DMs: true},
		Quota:  Quota{AdminsExempt: true},
		OpenAI: OpenAI{
			BaseURL:        "https://api.openai.com/v1",
			Model:          openai.DefaultModel,
			ResponsesModel: responses.DefaultModel,
			Store:          true,
			Timeout:        Duration(openai.DefaultTimeout),
			MaxRetries:     openai.DefaultMaxRetries,
			Stream:         true,
			PartialImages:  openai.DefaultPartialImages,
			Moderation:     "auto",
			Prices:         defaultPrices(),
		},
		Preview: Preview{Delay: 0},
		Attach: Attach{MaxFiles: imagecheck.DefaultMaxFiles, MaxSizeMB: imagecheck.DefaultMaxBytes >> 20,
			MaxSide: imagecheck.DefaultMaxSide, MaxPixels: imagecheck.DefaultMaxPixels},
		Slack: Slack{
			Mode:    "socket",
			Listen:  slack.DefaultListen,
			APIURL:  slack.DefaultAPIURL,
			Command: slack.DefaultCommand,
		},
		Discord: Discord{APIURL: discord.DefaultAPIURL, Guilds: []string{}, AdminRoles: []string{}, Shards: ShardsAuto},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// defaultPrices is the OpenAI providers' price table, as config keys: the
// image models and openai-responses' conversation models.
func defaultPrices() map[string]Price {
	prices := map[string]Price{}
	for model, p := range responses.DefaultPrices() {
		prices[model] = Price{TextInput: p.TextInput, ImageInput: p.ImageInput, Output: p.Output}
	}
	return prices
}

// MaxFileSize is the largest configuration file Load reads, 1 MiB: real ones
// are a few kilobytes.
const MaxFileSize = 1 << 20

// Load returns DefaultConfig overlaid with the TOML file at path (none if
// path is ""), then with the environment read through getenv (os.Getenv if
// nil), checked by Validate.
//
// The file may not contain keys that Config lacks. From the environment,
// OPENAI_BASE_URL overrides openai.base_url, EASEL_DATA_DIR overrides
// storage.dir, and the Secrets are read; secrets missing for the enabled
// parts are not an error here (see MissingSecrets), but a malformed
// EASEL_WEB_KEY is.
//
// A file that cannot be read yields an error wrapping its *fs.PathError: also
// a file that is not a regular file (such as a FIFO or a device, refused
// before anything is read from it; a symbolic link to a regular file is
// fine) or is larger than MaxFileSize.
// Otherwise every problem found is an *Error, joined with errors.Join, in the
// order of the lines they concern (those not in the file last): the syntax
// error, if any, alone; else the unknown keys and the values of the wrong
// type; else the values that fail validation. A value that came from the
// environment is reported under the variable's name. No error shows the
// value of a secret. On error the returned Config is the zero value.
func Load(path string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := DefaultConfig()
	cfg.Secrets = secretsFrom(getenv)
	var keys *keyIndex
	var problems []*Error
	if path != "" {
		doc, err := regfile.ReadFile(path, MaxFileSize)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		keys, problems = decode(doc, &cfg)
		for _, p := range problems {
			p.File = path
		}
	}
	if len(problems) == 0 {
		fromEnv := cfg.override(getenv)
		problems = append(cfg.problems(), cfg.Secrets.problems()...)
		for _, p := range problems {
			if env, ok := fromEnv[p.Key]; ok {
				p.Key = env
			} else if keys != nil {
				p.File, p.Line = path, keys.line(p.Key)
			}
		}
	}
	if len(problems) > 0 {
		cfg.Secrets.redact(problems)
		return Config{}, inLineOrder(problems)
	}
	return cfg, nil
}

// override applies the environment variables that override keys, read
// through getenv. It returns the keys it overrode, mapped to the variables.
func (c *Config) override(getenv func(string) string) map[string]string {
	overrides := []struct {
		env, key string
		field    *string
	}{
		{"OPENAI_BASE_URL", "openai.base_url", &c.OpenAI.BaseURL},
		{"EASEL_DATA_DIR", "storage.dir", &c.Storage.Dir},
	}
	fromEnv := make(map[string]string)
	for _, o := range overrides {
		if v := getenv(o.env); v != "" {
			*o.field = v
			fromEnv[o.key] = o.env
		}
	}
	return fromEnv
}

// ProviderName returns the provider used when a prompt names none:
// provider.default if set, else "openai" if OPENAI_API_KEY is set, else
// "preview".
func (c Config) ProviderName() string {
	switch {
	case c.Provider.Default != "":
		return c.Provider.Default
	case c.Secrets.OpenAIKey != "":
		return ProviderOpenAI
	default:
		return ProviderPreview
	}
}

// MissingSecrets returns the environment variables that the enabled parts of
// c need but are unset, in a fixed order, or nil: OPENAI_API_KEY when the
// default provider is "openai" or "openai-responses"; SLACK_BOT_TOKEN (or,
// with SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and EASEL_TOKEN_KEY) and, for
// Socket Mode, SLACK_APP_TOKEN or, for http mode, SLACK_SIGNING_SECRET when
// Slack is enabled; DISCORD_BOT_TOKEN when Discord is enabled.
func (c Config) MissingSecrets() []string {
	var missing []string
	need := func(env, value string) {
		if value == "" {
			missing = append(missing, env)
		}
	}
	if p := c.ProviderName(); p == ProviderOpenAI || p == ProviderOpenAIResponses {
		need(envOpenAIKey, c.Secrets.OpenAIKey)
	}
	if c.Slack.Enabled {
		if c.Secrets.SlackClientID == "" {
			need(envSlackBotToken, c.Secrets.SlackBotToken)
		} else {
			need(envSlackClientSecret, c.Secrets.SlackClientSecret)
			need(envTokenKey, c.Secrets.TokenKey)
		}
		if c.Slack.Mode == "http" {
			need(envSlackSigningSecret, c.Secrets.SlackSigningSecret)
		} else {
			need(envSlackAppToken, c.Secrets.SlackAppToken)
		}
	}
	if c.Discord.Enabled {
		need(envDiscordBotToken, c.Secrets.DiscordBotToken)
	}
	if c.Storage.Backend == StoragePostgres {
		need(envPostgresURL, c.Secrets.PostgresURL)
	}
	if c.Images.Backend == ImagesS3 {
		need(envAWSAccessKey, c.Secrets.AWSAccessKeyID)
		need(envAWSSecretKey, c.Secrets.AWSSecretAccessKey)
	}
	return missing
}
