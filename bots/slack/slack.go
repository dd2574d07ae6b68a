// Package slack is Easel's Slack adapter. Slash commands, mentions, thread
// replies, direct messages and button presses come in over Socket Mode (the
// default) or the HTTP Events API; each is acknowledged at once and then
// handed to the engine, whose replies, status lines and images go back into
// the Slack thread the session lives in.
//
// A session is bound to one Slack thread: its key is the channel id and the
// thread's root timestamp, "C0123/1712345678.000100". Button values name the
// session and version, so buttons keep working after a restart.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// Platform is the platform name of Slack sessions.
const Platform = "slack"

// Defaults of Config.
const (
	DefaultAPIURL  = "https://slack.com/api/"
	DefaultCommand = "/imagine"
	DefaultListen  = ":3000"
	DefaultWorkers = 16
)

// eventTTL is how long a delivered event, command or interaction id is
// remembered for dedupe; Slack retries within minutes.
const eventTTL = 24 * time.Hour

// Engine is what the adapter needs of core.Engine.
type Engine interface {
	// Handle queues a message; see core.Engine.Handle. It returns an
	// *core.Error for anything the sender should be told directly.
	Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error)
	// Allowed reports whether msg's sender may use Easel where msg was
	// sent; see core.Engine.Allowed. It returns a Forbidden *core.Error,
	// to tell the sender alone, or nil. It does no I/O.
	Allowed(msg core.Message) error
	// Check reports what Handle would say about msg now, recording
	// nothing; see core.Engine.Check. It returns nil, the *core.Error
	// Handle would return, or an error reading the store.
	Check(ctx context.Context, msg core.Message) error
	// Session returns the current session of a platform thread, or a
	// NotFound *core.Error when the thread has none.
	Session(ctx context.Context, platform, thread string) (*core.Session, error)
	// ChooseRegion records a choice from a result's "Edit region" menu
	// for the chooser's next prompt in the thread, and says it there; see
	// core.Engine.ChooseRegion. It returns an *core.Error for the chooser.
	ChooseRegion(ctx context.Context, th core.Thread, msg core.Message, region string) error
	// Cancel cancels turn id of the thread's session, as a status line's
	// Cancel button asks; see core.Engine.Cancel. It returns an
	// *core.Error for the presser.
	Cancel(ctx context.Context, th core.Thread, msg core.Message, id int) error
	// Delete deletes the version a result's Delete button is under; see
	// core.Engine.Delete. It returns an *core.Error for the presser.
	Delete(ctx context.Context, th core.Thread, msg core.Message) error
	// Describe suggests prompts for an attached image; see
	// core.Engine.Describe.
	Describe(ctx context.Context, msg core.Message) (core.Described, error)
	// Suggestion returns a suggestion of a describe for presser; see
	// core.Engine.Suggestion.
	Suggestion(ctx context.Context, sessionID string, turnID, n int, presser core.User) (string, error)
	// Styles returns the styles of msg's workspace, the config's and
	// those set in chat, sorted by name; see core.Engine.Styles.
	Styles(ctx context.Context, msg core.Message) ([]core.Style, error)
	// SetStyle defines or replaces a style of msg's workspace, as an
	// admin asks; see core.Engine.SetStyle. It returns an *core.Error
	// for the asker.
	SetStyle(ctx context.Context, msg core.Message, name, spec string, refs []core.Image) (core.Style, bool, error)
	// DeleteStyle deletes a style set in chat, as an admin asks; see
	// core.Engine.DeleteStyle. It returns an *core.Error for the asker.
	DeleteStyle(ctx context.Context, msg core.Message, name string) error
	// ChannelDefaults returns the defaults that apply to new sessions in
	// msg's channel, and where they were set ("" for none); see
	// core.Engine.ChannelDefaults.
	ChannelDefaults(ctx context.Context, msg core.Message) (core.ChannelDefaults, string, error)
	// SetChannelDefaults sets, or with spec "" clears, the defaults of
	// channel where, as an admin asks; see core.Engine.SetChannelDefaults.
	// It returns an *core.Error for the asker.
	SetChannelDefaults(ctx context.Context, msg core.Message, where, spec string) (core.ChannelDefaults, error)
}

// Config configures a Bot. Only the secrets for the chosen mode are needed.
type Config struct {
	// BotToken (SLACK_BOT_TOKEN, xoxb-…) serves the workspace it belongs
	// to; it is needed unless the app is installed through OAuth.
	BotToken      string
	AppToken      string // SLACK_APP_TOKEN (xapp-…), for Socket Mode
	SigningSecret string // SLACK_SIGNING_SECRET, for http mode
	// ClientID and ClientSecret (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET),
	// set together, let workspaces install the app through OAuth v2 (see
	// Mount). Each installed workspace is served with its own bot token,
	// kept in Installations sealed with TokenKey.
	ClientID     string
	ClientSecret string
	// TokenKey (EASEL_TOKEN_KEY, decoded) seals installed tokens with
	// AES-256-GCM: install.KeySize bytes. Needed with ClientID.
	TokenKey []byte
	// Installations keeps the installations. Needed with ClientID.
	Installations Installations
	// PublicURL is the address people reach Easel's web server at
	// (web.public_url); Slack sends the browser back to
	// PublicURL/slack/oauth_redirect. Needed with ClientID.
	PublicURL string
	// Mode is "socket" (default: Socket Mode, no public URL needed) or
	// "http" (the Events API, served on Listen).
	Mode string
	// Listen is the address served in http mode; default ":3000".
	Listen string
	// APIURL is the Web API root, ending with "/"; default
	// "https://slack.com/api/". File downloads and response URLs are trusted
	// on Slack's own hosts and on this URL's host.
	APIURL string
	// Command is the slash command, such as "/imagine" (the default).
	Command string
	// HTTPClient, if set, makes every Web API call and file download.
	HTTPClient *http.Client
	// Workers bounds the deliveries handled at once after their ack;
	// default 16. More wait in a queue of 64 per worker; beyond that the
	// reader waits before acknowledging more.
	Workers int
	// Attachments bound the images attached to a message; zero fields
	// take imagecheck's defaults.
	Attachments imagecheck.Limits
	// TakeUpEvery, when several processes share the store, is how often
	// to take up the deliveries that one of them recorded and left when it
	// died or froze. Zero takes them up at start only.
	TakeUpEvery time.Duration
	// Connections, if set, are the Socket Mode connection slots of every
	// process running the app (Slack allows 10 connections per app): a
	// Socket Mode bot holds one while its connection is open, and waits
	// without one. Nil: no limit but this process's single connection.
	Connections ConnectionSlots
	// Metrics, if set, observes acknowledgements and the inbox.
	Metrics Metrics
}

// Bot is the Slack adapter. Run it with Run; its methods are safe for
// concurrent use.
type Bot struct {
	cfg    Config
	app    *slackapi.Client // Socket Mode, with the app-level token
	engine Engine
	inbox  *inbox.Inbox // deliveries, recorded before they are acknowledged
	log    *slog.Logger
	apiURL *url.URL

	// home is the workspace of BotToken, nil without one; identify
	// fills in its bot's ids and homeTeam.
	home     *workspace
	whoMu    sync.Mutex // held while identify asks who the bot is
	homeTeam string

	installs Installations // nil without OAuth
	box      *install.Box  // seals installed tokens
	clients  *clientCache  // the installed workspaces' clients
	oauth    *oauthFlow    // the install pages, nil without OAuth

	threads   *threadCache
	users     *userCache
	assistant *assistantGate // where the assistant pane's methods were refused

	jobs chan func(context.Context)
	wg   sync.WaitGroup

	accepting chan struct{} // a slot per delivery being recorded
	acks      sync.WaitGroup

	bodies      *bodyBudget   // http mode: request bodies held at once
	bodyTimeout time.Duration // http mode: how long a body may take to arrive
	rejects     *rejectLog    // http mode: requests refused for their signature

	metrics   Metrics
	connected atomic.Bool // Socket Mode is connected, or http mode serves: see Ready
}

// maxAccepting bounds the Socket Mode deliveries being recorded at once.
const maxAccepting = 256

// New returns a Bot for cfg that hands messages to engine and records
// deliveries in store's inbox. It checks cfg but makes no network call.
func New(cfg Config, engine Engine, store inbox.Store, log *slog.Logger) (*Bot, error) {
	if engine == nil || store == nil {
		return nil, errors.New("slack: New needs an engine and a store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Mode = either(cfg.Mode, "socket")
	cfg.Listen = either(cfg.Listen, DefaultListen)
	cfg.APIURL = either(cfg.APIURL, DefaultAPIURL)
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	cfg.Command = either(cfg.Command, DefaultCommand)
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.HTTPClient == nil {
		// net/http keeps 2 idle connections per host by default: with more
		// turns posting at once, every call past those would open a new
		// connection and close it after.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		cfg.HTTPClient = &http.Client{Timeout: 2 * time.Minute, Transport: tr}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	apiURL, err := url.Parse(cfg.APIURL)
	if err != nil || apiURL.Host == "" || (apiURL.Scheme != "https" && apiURL.Scheme != "http") {
		return nil, fmt.Errorf("slack: api_url %q is not an http(s) URL", cfg.APIURL)
	}
	b := &Bot{
		cfg: cfg, engine: engine, inbox: inbox.New(store, Platform, eventTTL, log), log: log, apiURL: apiURL,
		clients: newClientCache(), threads: newThreadCache(), users: newUserCache(), assistant: newAssistantGate(),
		accepting: make(chan struct{}, maxAccepting),
		bodies:    newBodyBudget(bodyBudgetBytes), bodyTimeout: bodyTimeout, rejects: newRejectLog(log),
	}
	b.metrics = cfg.Metrics
	if b.metrics == nil {
		b.metrics = inbox.NoMetrics{}
	}
	b.inbox.Observe(b.metrics)
	if cfg.ClientID != "" {
		if b.oauth, b.box, err = b.newOAuthFlow(); err != nil {
			return nil, err
		}
		b.installs = cfg.Installations
	}
	b.app = b.newClient("")
	if cfg.BotToken != "" {
		b.home = b.newWorkspace(cfg.BotToken, "")
	}
	return b, nil
}

// check reports the first problem with cfg, naming the setting but never a
// secret's value.
func (cfg Config) check() error {
	switch {
	case cfg.BotToken == "" && cfg.ClientID == "":
		return errors.New("slack: the bot token (SLACK_BOT_TOKEN, xoxb-…) is missing; or, to install into many workspaces, set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
	case cfg.Mode == "socket" && cfg.AppToken == "":
		return errors.New("slack: Socket Mode needs an app-level token (SLACK_APP_TOKEN, xapp-…) with connections:write")
	case cfg.Mode == "http" && cfg.SigningSecret == "":
		return errors.New("slack: http mode needs the signing secret (SLACK_SIGNING_SECRET)")
	case cfg.Mode != "socket" && cfg.Mode != "http":
		return fmt.Errorf("slack: mode %q is not allowed: use socket or http", cfg.Mode)
	case !strings.HasPrefix(cfg.Command, "/"):
		return fmt.Errorf("slack: command %q must start with /", cfg.Command)
	}
	return nil
}

// Run connects to Slack and handles deliveries until ctx ends: over Socket
// Mode, or in http mode by serving /slack/events, /slack/commands and
// /slack/interactivity on cfg.Listen. It returns nil when ctx ends, after
// the deliveries already acknowledged have been handed to the engine, or an
// error when the bot token is rejected, the address cannot be served or the
// Socket Mode connection fails for good.
func (b *Bot) Run(ctx context.Context) error {
	var ln net.Listener
	if b.cfg.Mode == "http" {
		var err error
		if ln, err = net.Listen("tcp", b.cfg.Listen); err != nil {
			return fmt.Errorf("slack: listen: %w", err)
		}
	}
	return b.run(ctx, ln)
}

// run is Run with the http-mode listener already open (nil in Socket Mode).
func (b *Bot) run(ctx context.Context, ln net.Listener) error {
	if err := b.identify(ctx); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	b.startWorkers(ctx)
	defer b.stopWorkers()
	// Deliveries still waiting for their turn when Run returns (see reply)
	// stay in the inbox for the next start.
	defer b.inbox.Close()
	if err := b.replay(ctx); err != nil {
		return err
	}
	var takers sync.WaitGroup
	defer takers.Wait() // before the workers stop: a take-up enqueues
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	takers.Go(func() { inbox.TakeUpEvery(tctx, b.cfg.TakeUpEvery, b.replay, b.log) })
	if ln != nil {
		return b.serveHTTP(ctx, ln)
	}
	return b.runSocket(ctx)
}

// identify learns the bot's own user id in the workspace of BotToken, so
// its messages and mentions are recognised there. It asks Slack once;
// threads resumed before Run (see Thread) may ask first. Without BotToken
// there is nothing to learn: each installation knows its bot user.
func (b *Bot) identify(ctx context.Context) error {
	if b.home == nil {
		b.log.Info("slack connected; serving the workspaces that installed the app", "mode", b.cfg.Mode)
		return nil
	}
	b.whoMu.Lock()
	defer b.whoMu.Unlock()
	if b.home.botUser != "" {
		return nil
	}
	var who *slackapi.AuthTestResponse
	err := b.call(ctx, "auth.test", func() (err error) {
		who, err = b.home.api.AuthTestContext(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("slack: check the bot token (auth.test): %w", err)
	}
	b.home.botUser, b.home.botID, b.homeTeam = who.UserID, who.BotID, who.TeamID
	b.log.Info("slack connected", "team", who.Team, "bot_user", who.UserID, "mode", b.cfg.Mode)
	return nil
}

// Thread returns the core.Thread of a stored Slack session, for resuming its
// queued turns after a restart; false for another platform's session or a
// thread key that is not Slack's.
func (b *Bot) Thread(sess *core.Session) (core.Thread, bool) {
	if sess.Platform != Platform {
		return nil, false
	}
	channel, ts, ok := splitKey(sess.Thread)
	if !ok {
		return nil, false
	}
	return b.thread(teamID{team: sess.Workspace}, channel, ts), true
}

// trusted reports whether u is on one of Slack's own hosts (https only) or
// on the configured API host, where the bot token may be sent.
func (b *Bot) trusted(u *url.URL) bool {
	if strings.EqualFold(u.Host, b.apiURL.Host) && u.Scheme == b.apiURL.Scheme {
		return true
	}
	host := strings.ToLower(u.Hostname())
	for _, domain := range []string{"slack.com", "slack-gov.com"} {
		if u.Scheme == "https" && (host == domain || strings.HasSuffix(host, "."+domain)) {
			return true
		}
	}
	return false
}

// either returns a if it is set, else b.
func either(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
