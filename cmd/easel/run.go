package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
)

// bot is a chat platform adapter served by `easel run`.
type bot interface {
	// Run serves the platform until ctx ends.
	Run(ctx context.Context) error
	// Thread rebuilds the thread of a stored session of this platform.
	Thread(sess *core.Session) (core.Thread, bool)
	// Ready reports whether the platform's connection takes deliveries
	// now, for GET /readyz.
	Ready() error
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "run", "run -config FILE")
	configPath := fs.String("config", "", "TOML config `file` naming the platforms to serve")
	data := fs.String("data", "", "data `dir` (default: storage.dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	applyOverrides(&cfg, *data, "")
	if !cfg.Slack.Enabled && !cfg.Discord.Enabled {
		return errors.New("nothing to run: enable [slack] or [discord] in the config file (see config.example.toml), or try `easel chat`")
	}
	if missing := cfg.MissingSecrets(); len(missing) > 0 {
		return fmt.Errorf("missing environment variables: %s", strings.Join(missing, ", "))
	}
	log := newLogger(e.stderr, cfg.Log, slog.LevelDebug)

	a, err := openApp(ctx, cfg, log, newMetrics(cfg))
	if err != nil {
		return err
	}
	bots, err := newBots(ctx, cfg, a, log)
	if err != nil {
		a.abort()
		return err
	}
	open := func(s *core.Session) (core.Thread, bool) {
		for _, b := range bots {
			if th, ok := b.Thread(s); ok {
				return th, true
			}
		}
		return nil, false
	}
	n, err := a.engine.Resume(ctx, open)
	if err != nil {
		a.abort()
		return err
	}
	log.Info("easel running", "platforms", len(bots), "provider", cfg.ProviderName(), "data", a.db.Location(), "resumed_sessions", n)

	g, gctx := errgroup.WithContext(ctx)
	for _, b := range bots {
		g.Go(func() error { return b.Run(gctx) })
	}
	if srv := newWeb(cfg, a, bots, log); srv != nil {
		g.Go(func() error { return srv.Run(gctx) })
	}
	if a.limits != nil {
		// Replicas share the work: take up what a replica that died or
		// froze left, and what another recorded as its lock was let go.
		g.Go(func() error { a.resumeEvery(gctx, a.takeUpEvery(cfg), open); return nil })
	}
	runErr := g.Wait()
	// Turns still running after engine.stop_grace stay recorded as running
	// and resume on the next start.
	grace := time.Duration(cfg.Engine.StopGrace)
	log.Info("stopping: letting running turns finish", "grace", grace)
	gctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := a.close(gctx); err != nil {
		log.Warn("stopped with turns unfinished; they resume on the next start", "err", err)
	}
	return runErr
}

// resumeEvery calls Engine.Resume every period until ctx ends.
func (a *app) resumeEvery(ctx context.Context, period time.Duration, open func(*core.Session) (core.Thread, bool)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.engine.Resume(ctx, open); err != nil && ctx.Err() == nil {
			a.log.Warn("taking up pending turns failed; trying again", "err", err)
		}
	}
}

// takeUpEvery is how often a replica looks for the turns and deliveries
// another left: what a killed replica held is free at once, what a frozen
// one held once its lease runs out, and either is taken up at the next
// look, every half lease and at least every 2 s. Never on a store only this
// process uses.
func (a *app) takeUpEvery(cfg config.Config) time.Duration {
	if a.limits == nil {
		return 0
	}
	return min(time.Duration(cfg.Storage.Lease)/2, maxTakeUpPeriod)
}

// maxTakeUpPeriod bounds how long a killed replica's work waits.
const maxTakeUpPeriod = 2 * time.Second

// slackOAuth returns the OAuth settings of the Slack adapter: none without
// SLACK_CLIENT_ID; else the client id and secret, the decoded token key,
// the store's installations and web.public_url.
func slackOAuth(cfg config.Config, a *app) (slack.Config, error) {
	if cfg.Secrets.SlackClientID == "" {
		return slack.Config{}, nil
	}
	key, err := install.ParseKey(cfg.Secrets.TokenKey)
	if err != nil {
		return slack.Config{}, fmt.Errorf("EASEL_TOKEN_KEY: %w", err)
	}
	installs, ok := a.db.(slack.Installations)
	if !ok {
		return slack.Config{}, fmt.Errorf("slack: the store at %s cannot keep installations", a.db.Location())
	}
	return slack.Config{ClientID: cfg.Secrets.SlackClientID, ClientSecret: cfg.Secrets.SlackClientSecret, TokenKey: key,
		Installations: installs, PublicURL: cfg.Web.PublicURL}, nil
}

// newBots builds the adapters of the enabled platforms. With limits
// shared by replicas, the Discord shards and IDENTIFYs, and the Slack
// Socket Mode connections, are shared too.
func newBots(ctx context.Context, cfg config.Config, a *app, log *slog.Logger) ([]bot, error) {
	var bots []bot
	if cfg.Slack.Enabled {
		var conns slack.ConnectionSlots
		if a.limits != nil {
			conns = a.limits.SlackConnections()
		}
		oauth, err := slackOAuth(cfg, a)
		if err != nil {
			return nil, err
		}
		b, err := slack.New(slack.Config{
			Connections:   conns,
			BotToken:      cfg.Secrets.SlackBotToken,
			AppToken:      cfg.Secrets.SlackAppToken,
			SigningSecret: cfg.Secrets.SlackSigningSecret,
			ClientID:      oauth.ClientID,
			ClientSecret:  oauth.ClientSecret,
			TokenKey:      oauth.TokenKey,
			Installations: oauth.Installations,
			PublicURL:     oauth.PublicURL,
			Mode:          cfg.Slack.Mode,
			Listen:        cfg.Slack.Listen,
			APIURL:        cfg.Slack.APIURL,
			Command:       cfg.Slack.Command,
			Attachments:   cfg.Attach.Limits(),
			TakeUpEvery:   a.takeUpEvery(cfg),
			HTTPClient:    platformClient(a.metrics, slack.Platform, slackTimeout),
			Metrics:       platformMetrics(a.metrics, slack.Platform),
		}, a.engine, a.db, log.With("platform", slack.Platform))
		if err != nil {
			return nil, err
		}
		bots = append(bots, b)
	}
	if cfg.Discord.Enabled {
		var leases discord.ShardLeases
		var identifies discord.IdentifyLimits
		if a.limits != nil {
			var err error
			if a.shards, err = a.limits.Shards(ctx); err != nil {
				return nil, err
			}
			leases, identifies = a.shards, a.shards
		}
		b, err := discord.New(discord.Config{
			Shards:         cfg.Discord.Shards.Count(),
			ShardLeases:    leases,
			Identifies:     identifies,
			Token:          cfg.Secrets.DiscordBotToken,
			APIURL:         cfg.Discord.APIURL,
			Guilds:         cfg.Discord.Guilds,
			MessageContent: cfg.Discord.MessageContent,
			AdminRoles:     cfg.Discord.AdminRoles,
			Attachments:    cfg.Attach.Limits(),
			TakeUpEvery:    a.takeUpEvery(cfg),
			HTTPClient:     platformClient(a.metrics, discord.Platform, discordTimeout),
			Metrics:        platformMetrics(a.metrics, discord.Platform),
		}, a.engine, a.db, log.With("platform", discord.Platform))
		if err != nil {
			return nil, err
		}
		bots = append(bots, b)
	}
	return bots, nil
}
