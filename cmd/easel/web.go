package main

import (
	"log/slog"

	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/web"
)

// newWeb returns the web server of `easel run` with everything it serves
// mounted, or nil if web.listen is empty.
func newWeb(cfg config.Config, a *app, bots []bot, log *slog.Logger) *web.Server {
	if cfg.Web.Listen == "" {
		return nil
	}
	srv := web.New(cfg.Web.Listen, log.With("component", "web"))
	for _, b := range bots {
		if sb, ok := b.(*slack.Bot); ok {
			sb.Mount(srv) // the OAuth install pages, if installs are configured
		}
	}
	return srv
}
