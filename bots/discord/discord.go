// Package discord is Easel's Discord adapter: /imagine, @Easel mentions,
// session threads, DMs, result buttons and attachments, over Discord's
// gateway and REST API (through github.com/bwmarrin/discordgo).
//
// Each session lives in a Discord thread (or a DM channel): /imagine and
// mentions start one, every reply in it refines the image, and each result
// carries buttons whose custom ids name the session and version, so they keep
// working after a restart. Results are posted with the bot token, not the
// 15-minute interaction token, so a long queue still delivers.
//
// Every interaction and message Easel acts on goes through the durable
// inbox (package bots/inbox): an interaction is recorded before it is
// acknowledged, a message before anything acts on it, and the turn each
// asks for marks it handled in the same commit; what a stopped process
// left unhandled is handled on the next start, and a RESUME replay or a
// second reading of a message starts no second job. A channel's messages
// are handled one at a time, in order. Discord does not resend the
// messages a stopped process missed: on each connect Easel reads those of
// its recently active session threads, and the mentions in their channels
// (see catchup.go).
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"golang.org/x/sync/semaphore"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// workspaceTerm is what Discord calls a workspace (a guild), in messages
// to its users.
const workspaceTerm = "server"

// Platform is the platform name of Discord sessions.
const Platform = "discord"

// DefaultAPIURL is Discord's REST API root.
const DefaultAPIURL = "https://discord.com/api/"

// Limits of event handling.
const (
	// eventTimeout bounds the handling of one gateway event; interaction
	// tokens last 15 minutes, downloads and the engine take seconds.
	eventTimeout = 2 * time.Minute
	// dedupeTTL is how long a handled interaction or message id is
	// remembered: far longer than any gateway RESUME window, and longer
	// than catchUpAge, so that a message read again on a catch-up is
	// known.
	dedupeTTL = 48 * time.Hour
	// hintTTL is how long a thread stays told that replies must mention Easel.
	hintTTL = 30 * 24 * time.Hour
	// maxBusy bounds the events handled at once past their acknowledgement,
	// so a burst of commands cannot starve the acknowledgements of those
	// still arriving.
	maxBusy = 16
)

// Config configures a Bot.
type Config struct {
	// Token is the bot token (DISCORD_BOT_TOKEN), with or without "Bot ".
	Token string
	// APIURL is the REST API root, such as a proxy's; DefaultAPIURL when
	// empty. The gateway URL comes from GET /gateway, and attachments are
	// also downloaded from this host when it is not Discord's.
	APIURL string
	// Guilds are the guild ids where /imagine is registered, which takes
	// effect at once; with none it is registered globally (and also works
	// in DMs), which Discord may take a while to show.
	Guilds []string
	// MessageContent requests the privileged Message Content intent. Without
	// it Discord blanks replies that do not mention the bot, so Easel asks
	// for a mention.
	MessageContent bool
	// AdminRoles are role ids whose members may press anyone's buttons,
	// like members with the Administrator permission and the engine's
	// admins.
	AdminRoles []string
	// HTTPClient makes the REST calls and attachment downloads; its
	// Transport is wrapped, not changed. Default: a client with a 1-minute
	// timeout and a pool of up to 64 connections per host.
	HTTPClient *http.Client
	// Attachments bound the images attached to a message; zero fields
	// take imagecheck's defaults.
	Attachments imagecheck.Limits
	// TakeUpEvery, when several processes share the store, is how often
	// to take up the deliveries that one of them recorded and left when it
	// died or froze. Zero takes them up at start only.
	TakeUpEvery time.Duration
	// Shards is how many gateway shards the bot runs; 0 takes the number
	// Discord recommends (GET /gateway/bot).
	Shards int
	// ShardLeases spread the shards over the processes that run the bot,
	// such as replicas sharing a database; nil: this process holds them
	// all.
	ShardLeases ShardLeases
	// Identifies pace the IDENTIFYs of the processes that share
	// ShardLeases; nil: this process paces its own, and backs off when
	// the bot connected often lately (see identifyWait).
	Identifies IdentifyLimits
	// Metrics, if set, observes acknowledgements and the inbox.
	Metrics Metrics
}

// Engine is what the adapter needs of core.Engine.
type Engine interface {
	// Handle queues a message; see core.Engine.Handle. It returns a
	// *core.Error for anything the user should be told directly.
	Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error)
	// Allowed reports whether msg's sender may use Easel where msg was
	// sent; see core.Engine.Allowed. It returns a Forbidden *core.Error,
	// to tell the sender, or nil. It does no I/O.
	Allowed(msg core.Message) error
	// Session returns the current session of a platform thread, or a
	// NotFound *core.Error when the thread has none.
	Session(ctx context.Context, platform, thread string) (*core.Session, error)
	// ChooseRegion records a choice from a result's "Edit region" menu
	// for the chooser's next prompt in the thread, and says it there; see
	// core.Engine.ChooseRegion. It returns an *core.Error for the chooser.
	ChooseRegion(ctx context.Context, th core.Thread, msg core.Message, region string) error
	// Cancel cancels turn id of the thread's session, as a status
	// message's Cancel button asks; see core.Engine.Cancel. It returns an
	// *core.Error for the presser.
	Cancel(ctx context.Context, th core.Thread, msg core.Message, id int) error
	// Delete deletes the version a confirmed Delete button names; see
	// core.Engine.Delete. It returns an *core.Error for the presser.
	Delete(ctx context.Context, th core.Thread, msg core.Message) error
	// Describe suggests prompts for an attached image; see
	// core.Engine.Describe.
	Describe(ctx context.Context, msg core.Message) (core.Described, error)
	// Suggestion returns a suggestion of a describe for presser; see
	// core.Engine.Suggestion.
	Suggestion(ctx context.Context, sessionID string, turnID, n int, presser core.User) (string, error)
	// Styles returns the styles of msg's server, the config's among them,
	// sorted by name; see core.Engine.Styles.
	Styles(ctx context.Context, msg core.Message) ([]core.Style, error)
	// SetStyle defines or replaces a style of msg's server, as an admin
	// asks, and reports whether it replaced one; see core.Engine.SetStyle.
	// It returns an *core.Error for the asker.
	SetStyle(ctx context.Context, msg core.Message, name, spec string, refs []core.Image) (core.Style, bool, error)
	// DeleteStyle deletes a style of msg's server set in chat, as an admin
	// asks; see core.Engine.DeleteStyle. It returns an *core.Error for the
	// asker.
	DeleteStyle(ctx context.Context, msg core.Message, name string) error
	// ChannelDefaults returns the defaults that apply in msg's channel (its
	// own, else its category's) and where they were set; see
	// core.Engine.ChannelDefaults.
	ChannelDefaults(ctx context.Context, msg core.Message) (core.ChannelDefaults, string, error)
	// SetChannelDefaults sets, or with spec "" clears, the defaults of a
	// channel or category, as an admin asks; see
	// core.Engine.SetChannelDefaults. It returns an *core.Error for the
	// asker.
	SetChannelDefaults(ctx context.Context, msg core.Message, where, spec string) (core.ChannelDefaults, error)
}

// EventLog is the durable inbox of interactions and messages (see
// inbox.Store), the marks that keep notes to users from repeating, and the
// record of gateway connects; *storage.DB implements it.
type EventLog interface {
	inbox.Store
	// MarkEvent records event key and reports whether this is its first
	// delivery within ttl; false means a duplicate to drop.
	MarkEvent(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	// Starts returns the start times recorded for name at or after since,
	// oldest first.
	Starts(ctx context.Context, name string, since time.Time) ([]time.Time, error)
	// RecordStart durably records a start of name at at, forgets those
	// before at-keep and returns those kept, oldest first.
	RecordStart(ctx context.Context, name string, at time.Time, keep time.Duration) ([]time.Time, error)
}

// Bot is a Discord bot serving Easel. Create it with New and start it with Run.
type Bot struct {
	cfg    Config
	engine Engine
	events EventLog
	inbox  *inbox.Inbox // interactions and messages, recorded before they are acted on
	log    *slog.Logger
	dg     *discordgo.Session
	files  *imagecheck.Fetcher // downloads attachments, from Discord's CDN only
	busy   *semaphore.Weighted // see maxBusy
	pace   pacer               // paces IDENTIFYs; see identify.go

	leases         ShardLeases    // see shards.go
	identifies     IdentifyLimits // see shards.go
	shared         bool           // leases are shared with other processes: a shard can be taken over
	maxConcurrency int            // Discord's max_concurrency: IDENTIFY buckets
	fatal          chan error     // a shard's connection failed for good
	registered     atomic.Bool    // /imagine was registered
	metrics        Metrics

	shardsMu   sync.Mutex
	heldShards map[int]*shard // the shards held, for Ready; nil before they are taken

	life context.Context // ends when Run returns; bounds typing indicators
	end  context.CancelFunc

	mu         sync.Mutex
	meID       string             // the bot's user id, from GET /users/@me
	threads    map[string]*thread // live threads by channel id; see thread.go
	categories categories         // channels' categories learned over REST; see category.go
	fresh      map[string]bool    // DM channels whose next prompt starts a new session
	lanes      map[string]*lane   // channels whose messages are being handled; see inOrder
	closed     bool               // Run is returning: no new event handlers
	running    sync.WaitGroup     // event handlers in progress
}

// New returns a Bot for cfg that hands messages to engine and records
// interactions and messages in events. log may be nil. It makes no network
// call.
func New(cfg Config, engine Engine, events EventLog, log *slog.Logger) (*Bot, error) {
	token := strings.TrimSpace(strings.TrimPrefix(cfg.Token, "Bot "))
	if token == "" {
		return nil, errors.New("discord: no bot token: set DISCORD_BOT_TOKEN")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	api, err := url.Parse(cfg.APIURL)
	if err != nil || (api.Scheme != "https" && api.Scheme != "http") || api.Host == "" {
		return nil, fmt.Errorf("discord: api_url %q is not an http(s) URL", cfg.APIURL)
	}
	if !strings.HasSuffix(api.Path, "/") {
		api.Path += "/"
	}
	if cfg.HTTPClient == nil {
		// Reuse a pool of connections to Discord through a burst of
		// interaction answers rather than dialling one per request: the
		// default transport keeps only two idle.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost, t.MaxConnsPerHost = 64, 64
		cfg.HTTPClient = &http.Client{Timeout: time.Minute, Transport: t}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dg, err := discordgo.New("Bot " + token)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	client := *cfg.HTTPClient
	client.Transport = newAPITransport(api, cfg.HTTPClient.Transport)
	dg.Client = &client
	dg.Identify.Intents = intents(cfg.MessageContent)
	dg.Dialer = gatewayDialer()
	dg.LogLevel = discordgo.LogError

	if cfg.Shards < 0 {
		return nil, fmt.Errorf("discord: %d shards", cfg.Shards)
	}

	life, end := context.WithCancel(context.Background())
	log = log.With("platform", Platform)
	b := &Bot{
		cfg: cfg, engine: engine, events: events, inbox: inbox.New(events, Platform, dedupeTTL, log), log: log, dg: dg,
		files: newFetcher(api, cfg.HTTPClient, cfg.Attachments), busy: semaphore.NewWeighted(maxBusy),
		leases: cfg.ShardLeases, identifies: cfg.Identifies, shared: cfg.ShardLeases != nil, maxConcurrency: 1,
		fatal: make(chan error, 1),
		life:  life, end: end,
		threads: map[string]*thread{}, fresh: map[string]bool{}, lanes: map[string]*lane{},
	}
	if b.leases == nil {
		b.leases = &localShards{held: map[int]int64{}}
	}
	b.metrics = cfg.Metrics
	if b.metrics == nil {
		b.metrics = inbox.NoMetrics{}
	}
	b.inbox.Observe(b.metrics)
	if b.identifies == nil {
		b.identifies = &localIdentifies{now: func() time.Time { return b.pace.Now() }, next: map[int]time.Time{}}
	}
	return b, nil
}

// intents returns the gateway intents Easel needs: guilds (channels and
// threads), guild messages and DMs, and message content if configured.
func intents(messageContent bool) discordgo.Intent {
	i := discordgo.IntentGuilds | discordgo.IntentGuildMessages | discordgo.IntentDirectMessages
	if messageContent {
		i |= discordgo.IntentMessageContent
	}
	return i
}

// Run connects to the gateway, registers /imagine and serves events until
// ctx ends, then disconnects and waits for the events being handled. First
// it takes up the interactions and messages an earlier process recorded
// but did not handle. It runs the shards this process holds (all of them,
// without Config.ShardLeases; see shards.go), each connected after its
// turn to IDENTIFY. Without Config.Identifies, before it connects it waits
// if the bot connected often lately, as in a crash loop, so as not to use
// up Discord's 1000 IDENTIFYs a day (see identifyWait); it logs why. It
// returns an error if the token is rejected, the inbox cannot be read, the
// gateway cannot be opened for good or the command cannot be registered.
// Run may be called once.
func (b *Bot) Run(ctx context.Context) error {
	defer b.end()
	me, err := b.dg.User("@me", discordgo.WithContext(ctx))
	var rest *discordgo.RESTError
	switch {
	case errors.As(err, &rest) && rest.Response != nil && rest.Response.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("discord: the bot token (DISCORD_BOT_TOKEN) was rejected: %w", err)
	case err != nil:
		return fmt.Errorf("discord: reach the API at %s: %w", b.cfg.APIURL, err)
	}
	b.mu.Lock()
	b.meID = me.ID
	b.mu.Unlock()
	defer b.shutdown()
	if err := b.replay(ctx); err != nil {
		return err
	}
	var takers sync.WaitGroup
	defer takers.Wait()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	takers.Go(func() { inbox.TakeUpEvery(tctx, b.cfg.TakeUpEvery, b.replay, b.log) })
	count, maxConcurrency, err := b.gatewayShards(ctx)
	if err != nil {
		return err
	}
	b.maxConcurrency = maxConcurrency
	if !b.shared {
		if err := b.awaitIdentify(ctx); err != nil {
			return nil // ctx ended while waiting to identify
		}
	}
	return b.runShards(ctx, count)
}

// shutdown stops new event handlers and waits for those running.
func (b *Bot) shutdown() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.running.Wait()
}

// async runs fn for one event in a goroutine of its own, with a bounded
// context, unless Run is returning.
func (b *Bot) async(ctx context.Context, fn func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.running.Add(1)
	go func() {
		defer b.running.Done()
		ctx, cancel := context.WithTimeout(ctx, eventTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// openError explains the gateway close codes a newcomer can fix.
func openError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case 4004:
			return fmt.Errorf("discord: the gateway rejected the bot token (DISCORD_BOT_TOKEN): %w", err)
		case 4014:
			return fmt.Errorf("discord: the Message Content intent is not enabled for this bot: enable it in the Developer Portal (Bot → Privileged Gateway Intents) or set message_content = false: %w", err)
		case 4011:
			return fmt.Errorf("discord: Discord requires this bot to run more shards: set discord.shards = \"auto\" or a larger number: %w", err)
		case 4010:
			return fmt.Errorf("discord: Discord refused the shard count (discord.shards): %w", err)
		}
	}
	return fmt.Errorf("discord: open the gateway: %w", err)
}

// work runs fn once one of maxBusy slots is free, unless ctx ends first
// (the bot is stopping: what was recorded is handled on the next start).
func (b *Bot) work(ctx context.Context, fn func()) {
	if err := b.busy.Acquire(ctx, 1); err != nil {
		b.log.Info("not handling an event: stopping", "err", err)
		return
	}
	defer b.busy.Release(1)
	fn()
}

// me returns the bot's user id, known once Run asked for it or READY
// arrived.
func (b *Bot) me() string {
	b.mu.Lock()
	id := b.meID
	b.mu.Unlock()
	if id != "" {
		return id
	}
	b.dg.State.RLock()
	defer b.dg.State.RUnlock()
	if b.dg.State.User == nil {
		return ""
	}
	return b.dg.State.User.ID
}

// self returns the bot's user id, asking Discord when no READY arrived yet
// (a session resumed before Run connected).
func (b *Bot) self(ctx context.Context) (string, error) {
	if id := b.me(); id != "" {
		return id, nil
	}
	u, err := b.dg.User("@me", discordgo.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("discord: who am I: %w", err)
	}
	return u.ID, nil
}

// appID returns the application id from READY.
func (b *Bot) appID() string {
	b.dg.State.RLock()
	defer b.dg.State.RUnlock()
	if b.dg.State.Application != nil {
		return b.dg.State.Application.ID
	}
	if b.dg.State.User != nil {
		return b.dg.State.User.ID
	}
	return ""
}

// channel returns a channel or thread, from the gateway's state when it is
// there, else over REST. The copy is safe to read while state changes.
func (b *Bot) channel(ctx context.Context, id string) (discordgo.Channel, error) {
	if c, err := b.dg.State.Channel(id); err == nil {
		b.dg.State.RLock()
		defer b.dg.State.RUnlock()
		return *c, nil
	}
	c, err := b.dg.Channel(id, discordgo.WithContext(ctx))
	if err != nil {
		return discordgo.Channel{}, fmt.Errorf("discord: look up channel %s: %w", id, err)
	}
	return *c, nil
}

// userMessage returns what the user may be told about err, logging
// internal errors under a reference they can quote.
func (b *Bot) userMessage(err error, what string) string {
	ref := core.NewRef()
	if core.KindOf(err) == core.Internal {
		b.log.Error(what, "ref", ref, "err", err)
	}
	msg := core.UserMessage(err, ref)
	if core.KindOf(err) == core.Forbidden {
		return "🔒 " + msg
	}
	return "❌ " + msg
}
