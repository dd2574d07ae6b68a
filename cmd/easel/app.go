package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai"
	"github.com/easel-bot/easel/core/openai/responses"
	"github.com/easel-bot/easel/core/preview"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// app is Easel wired together: the store, the providers and the engine.
type app struct {
	cfg    config.Config
	db     *storage.DB
	images *imagedir.Dir
	engine *core.Engine
	log    *slog.Logger
}

// newLogger returns a logger writing cfg's format at cfg's level, or at
// least at floor.
func newLogger(w io.Writer, cfg config.Log, floor slog.Level) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: max(level, floor)}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens the data dir named by cfg for writing, creating it if
// need be. Only the commands that make images (chat, run) use it.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*storage.DB, error) {
	return storage.Open(ctx, cfg.Storage.Dir, storage.Options{Timeout: time.Duration(cfg.Storage.OpenTimeout), Logger: log})
}

// imagesDir is the directory of image files inside a data dir.
const imagesDir = "images"

// openImages opens the image directory of the data dir named by cfg for
// writing, creating it if need be.
func openImages(cfg config.Config, log *slog.Logger) (*imagedir.Dir, error) {
	return imagedir.Open(filepath.Join(cfg.Storage.Dir, imagesDir), log)
}

// readImages returns the image directory of the data dir named by cfg for
// reading only; it touches nothing on disk.
func readImages(cfg config.Config, log *slog.Logger) (*imagedir.Dir, error) {
	return imagedir.ReadOnly(filepath.Join(cfg.Storage.Dir, imagesDir), log)
}

// openReadOnly opens the existing data dir named by cfg for reading only,
// for the commands that only report (sessions, usage): it creates and
// changes nothing, works on a read-only file system, and reads a snapshot
// while another process holds the data dir.
func openReadOnly(ctx context.Context, cfg config.Config, log *slog.Logger) (*storage.DB, error) {
	return storage.OpenReadOnly(ctx, cfg.Storage.Dir, storage.Options{Logger: log})
}

// openApp opens the store and builds the providers and engine of cfg.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	providers, err := newProviders(cfg, log)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	images, err := openImages(cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	engine, err := core.NewEngine(engineConfig(cfg), db, images, providers, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &app{cfg: cfg, db: db, images: images, engine: engine, log: log}, nil
}

// engineConfig returns the engine's settings from cfg.
func engineConfig(cfg config.Config) core.EngineConfig {
	return core.EngineConfig{
		MaxConcurrent:   cfg.Engine.MaxConcurrent,
		MaxPerUser:      cfg.Engine.MaxPerUser,
		MaxQueue:        cfg.Engine.MaxQueue,
		Variations:      cfg.Engine.Variations,
		Limits:          core.Limits{MaxN: cfg.Engine.MaxN, MaxPromptChars: cfg.Engine.MaxPromptChars},
		TurnTimeout:     time.Duration(cfg.Provider.Timeout),
		StoreRetry:      time.Duration(cfg.Engine.StoreRetry),
		DefaultProvider: cfg.ProviderName(),
		Admins:          cfg.Engine.Admins,
		Access: core.Access{
			Workspaces: cfg.Access.Workspaces,
			Channels:   cfg.Access.Channels,
			Users:      cfg.Access.Users,
			Roles:      cfg.Access.Roles,
			DisableDMs: !cfg.Access.DMs,
		},
		Quotas: core.Quotas{
			ImagesPerUserDay:          cfg.Quota.ImagesPerUserDay,
			SpendPerWorkspaceMonthUSD: cfg.Quota.SpendPerWorkspaceMonthUSD,
			AdminsExempt:              cfg.Quota.AdminsExempt,
		},
	}
}

// newProviders returns the providers cfg can run: preview always, openai
// and openai-responses when a key is configured. The default provider must
// be among them.
func newProviders(cfg config.Config, log *slog.Logger) (map[string]core.Generator, error) {
	providers := map[string]core.Generator{
		"preview": preview.New(preview.Config{Delay: time.Duration(cfg.Preview.Delay)}),
	}
	if cfg.Secrets.OpenAIKey != "" {
		o := cfg.OpenAI
		prices := map[string]openai.Price{}
		for model, p := range o.Prices {
			prices[model] = openai.Price{TextInput: p.TextInput, ImageInput: p.ImageInput, Output: p.Output}
		}
		gen, err := openai.New(openai.Config{
			APIKey:        cfg.Secrets.OpenAIKey,
			BaseURL:       o.BaseURL,
			Model:         o.Model,
			Timeout:       time.Duration(o.Timeout),
			MaxRetries:    o.MaxRetries,
			Stream:        o.Stream,
			PartialImages: o.PartialImages,
			Moderation:    o.Moderation,
			Prices:        prices,
			Logger:        log,
		})
		if err != nil {
			return nil, fmt.Errorf("openai provider: %w", err)
		}
		providers[config.ProviderOpenAI] = gen
		conv, err := responses.New(responses.Config{
			APIKey:        cfg.Secrets.OpenAIKey,
			BaseURL:       o.BaseURL,
			Model:         o.ResponsesModel,
			ImageModel:    o.Model,
			Store:         o.Store,
			Timeout:       time.Duration(o.Timeout),
			MaxRetries:    o.MaxRetries,
			Stream:        o.Stream,
			PartialImages: o.PartialImages,
			Moderation:    o.Moderation,
			Prices:        prices,
			Logger:        log,
		})
		if err != nil {
			return nil, fmt.Errorf("openai-responses provider: %w", err)
		}
		providers[config.ProviderOpenAIResponses] = conv
	}
	if name := cfg.ProviderName(); providers[name] == nil {
		if name == config.ProviderOpenAI || name == config.ProviderOpenAIResponses {
			return nil, fmt.Errorf("provider %s needs an API key: set OPENAI_API_KEY, or use --provider preview", name)
		}
		return nil, fmt.Errorf("unknown provider %q: use openai, openai-responses or preview", name)
	}
	return providers, nil
}

// close stops the engine, letting running turns finish until ctx ends (the
// rest stay recorded and resume on the next start), then closes the store.
func (a *app) close(ctx context.Context) error {
	return errors.Join(a.engine.Close(ctx), a.db.Close())
}

// abort closes a at once, for a command that fails before it started work.
func (a *app) abort() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = a.close(ctx)
}
