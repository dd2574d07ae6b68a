package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/easel-bot/easel/config"
)

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
	log := newLogger(e.stderr, cfg.Log, slog.LevelDebug)

	var enabled []string
	if cfg.Slack.Enabled {
		enabled = append(enabled, "slack")
	}
	if cfg.Discord.Enabled {
		enabled = append(enabled, "discord")
	}
	if len(enabled) == 0 {
		return fmt.Errorf("nothing to run: enable [slack] or [discord] in the config file (see config.example.toml), or try `easel chat`")
	}
	if missing := cfg.MissingSecrets(); len(missing) > 0 {
		return fmt.Errorf("missing environment variables: %s", strings.Join(missing, ", "))
	}
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close(30 * time.Second)
	// The platform adapters are not part of this build yet: say so plainly
	// rather than pretending to serve.
	return fmt.Errorf("%s: not available yet in this build of Easel; use `easel chat` meanwhile", strings.Join(enabled, " and "))
}
