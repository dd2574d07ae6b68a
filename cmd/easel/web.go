package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/usage"
	"github.com/easel-bot/easel/gallery"
	"github.com/easel-bot/easel/metrics"
	"github.com/easel-bot/easel/web"
)

// newWeb returns the web server of `easel run` with everything it serves
// mounted, or nil if web.listen is empty: GET /readyz checks the store,
// each platform's connection and the provider; GET /metrics serves a's
// metrics.
func newWeb(cfg config.Config, a *app, bots []bot, log *slog.Logger) *web.Server {
	if cfg.Web.Listen == "" {
		return nil
	}
	srv := web.New(cfg.Web.Listen, log.With("component", "web"))
	srv.AddCheck("store", storeCheck(a.db, log.With("component", "web")))
	for _, b := range bots {
		srv.AddCheck(platformOf(b), web.CheckFunc(func(context.Context) error { return b.Ready() }))
	}
	srv.AddCheck("provider", providerCheck(cfg))
	if a.metrics != nil {
		a.metrics.WatchLoad(a.engine)
		srv.Handle("GET /metrics", a.metrics.Handler())
	}
	for _, b := range bots {
		if sb, ok := b.(*slack.Bot); ok {
			sb.Mount(srv) // the OAuth install pages, if installs are configured
		}
	}
	mountGallery(srv, cfg, a, log.With("component", "gallery"))
	return srv
}

// newMetrics returns the metrics `easel run` serves on GET /metrics, or
// nil without a web server to serve them.
func newMetrics(cfg config.Config) *metrics.Metrics {
	if cfg.Web.Listen == "" {
		return nil
	}
	return metrics.New()
}

// platformMetrics returns the observer of platform's adapter in m, or nil
// without m.
func platformMetrics(m *metrics.Metrics, platform string) inbox.AdapterMetrics {
	if m == nil {
		return nil
	}
	return m.Platform(platform)
}

// The adapters' HTTP clients: as their own defaults, a timeout per call
// and a pool of connections per host large enough for turns posting at
// once.
const (
	slackTimeout     = 2 * time.Minute
	discordTimeout   = time.Minute
	idleConnsPerHost = 64
)

// platformClient returns the HTTP client of platform's adapter, its
// requests counted in m; nil (the adapter's own) without m.
func platformClient(m *metrics.Metrics, platform string, timeout time.Duration) *http.Client {
	if m == nil {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = idleConnsPerHost
	return &http.Client{Timeout: timeout, Transport: m.Transport(platform, tr)}
}

// platformOf names b's platform, as its readiness check is listed.
func platformOf(b bot) string {
	switch b.(type) {
	case *slack.Bot:
		return slack.Platform
	case *discord.Bot:
		return discord.Platform
	}
	return fmt.Sprintf("%T", b)
}

// storeReadTimeout bounds the read of the store's readiness check.
const storeReadTimeout = time.Second

// storeCheck checks that the store answers a cheap read (a thread that has
// no session) within storeReadTimeout. What went wrong is logged; the
// readiness body says only that it did, so that nothing of the store's
// address or credentials shows there.
func storeCheck(db sessionStore, log *slog.Logger) web.CheckFunc {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, storeReadTimeout)
		defer cancel()
		_, err := db.SessionByThread(ctx, "readyz", "readyz")
		switch {
		case err == nil || core.KindOf(err) == core.NotFound:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("no answer to a read within %s", storeReadTimeout)
		}
		log.Warn("readiness: reading the store failed", "err", err)
		return errors.New("a read failed (the log says why)")
	}
}

// providerCheck checks that the default provider is one `easel run` can
// use: preview, or an OpenAI provider with its key set.
func providerCheck(cfg config.Config) web.CheckFunc {
	return func(context.Context) error {
		switch name := cfg.ProviderName(); name {
		case config.ProviderPreview:
			return nil
		case config.ProviderOpenAI, config.ProviderOpenAIResponses:
			if cfg.Secrets.OpenAIKey == "" {
				return fmt.Errorf("provider %s has no API key (OPENAI_API_KEY)", name)
			}
			return nil
		default:
			return fmt.Errorf("no provider configured (provider.default is %q)", name)
		}
	}
}

// mountGallery mounts the gallery on srv when EASEL_WEB_KEY is set.
func mountGallery(srv *web.Server, cfg config.Config, a *app, log *slog.Logger) {
	key, err := cfg.Secrets.WebSigningKey()
	if key == nil || err != nil { // config.Load refuses a malformed key
		log.Info("gallery off: set EASEL_WEB_KEY to serve it")
		return
	}
	var base string
	if u, err := url.Parse(cfg.Web.PublicURL); err == nil {
		base = u.Path
	}
	g, err := gallery.New(gallery.Config{
		Key:           key,
		SecureCookies: strings.HasPrefix(cfg.Web.PublicURL, "https://"),
		BasePath:      base,
		Limits:        usageLimits(cfg),
		Admins:        cfg.Engine.Admins,
		Log:           log,
	}, a.db, a.images)
	if err != nil {
		log.Error("gallery off", "err", err)
		return
	}
	g.Mount(srv)
}

// resultLinkTTL is how long the "Open in gallery" link posted with a
// result works.
const resultLinkTTL = 30 * 24 * time.Hour

// resultLinks returns what makes the "Open in gallery" link posted with
// each result, or nil unless easel run serves the gallery where people
// reach it: web.listen, web.public_url and EASEL_WEB_KEY all set.
func resultLinks(cfg config.Config) func(sessionID string) string {
	key, err := cfg.Secrets.WebSigningKey()
	if cfg.Web.Listen == "" || cfg.Web.PublicURL == "" || key == nil || err != nil {
		return nil
	}
	l, err := gallery.NewLinker(key, cfg.Web.PublicURL)
	if err != nil {
		return nil
	}
	return func(id string) string {
		link, _ := l.SessionLink(id, resultLinkTTL) // "" for an id no link can name
		return link
	}
}

// usageLimits returns the quotas of cfg, as the usage report shows them.
func usageLimits(cfg config.Config) usage.Limits {
	return usage.Limits{
		ImagesPerUserDay:          cfg.Quota.ImagesPerUserDay,
		SpendPerWorkspaceMonthUSD: cfg.Quota.SpendPerWorkspaceMonthUSD,
		AdminsExempt:              cfg.Quota.AdminsExempt,
	}
}
