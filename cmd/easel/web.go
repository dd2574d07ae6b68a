package main

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core/usage"
	"github.com/easel-bot/easel/gallery"
	"github.com/easel-bot/easel/web"
)

// newWeb returns the web server of `easel run` with everything it serves
// mounted, or nil if web.listen is empty.
func newWeb(cfg config.Config, a *app, bots []bot, log *slog.Logger) *web.Server {
	if cfg.Web.Listen == "" {
		return nil
	}
	srv := web.New(cfg.Web.Listen, log.With("component", "web"))
	mountGallery(srv, cfg, a, log.With("component", "gallery"))
	return srv
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
