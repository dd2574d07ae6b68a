package main

import (
	"log/slog"
	"strings"

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
	g, err := gallery.New(gallery.Config{
		Key:           key,
		SecureCookies: strings.HasPrefix(cfg.Web.PublicURL, "https://"),
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

// usageLimits returns the quotas of cfg, as the usage report shows them.
func usageLimits(cfg config.Config) usage.Limits {
	return usage.Limits{
		ImagesPerUserDay:          cfg.Quota.ImagesPerUserDay,
		SpendPerWorkspaceMonthUSD: cfg.Quota.SpendPerWorkspaceMonthUSD,
		AdminsExempt:              cfg.Quota.AdminsExempt,
	}
}
