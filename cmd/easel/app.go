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
	"github.com/easel-bot/easel/metrics"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/s3images"
)

// app is Easel wired together: the store, the providers and the engine.
type app struct {
	cfg    config.Config
	db     sessionStore
	images core.ImageStore
	limits *postgres.Limits // with storage.backend "postgres": the limits every replica shares
	shards *postgres.Shards // with limits and Discord: the Discord shards every replica shares
	engine *core.Engine
	log    *slog.Logger

	// metrics are what the engine and the adapters report, with
	// web.listen; nil otherwise.
	metrics *metrics.Metrics
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

// sessionStore is the session store as the commands use it: bbolt
// (storage.DB) or PostgreSQL (postgres.DB), chosen by storage.backend.
type sessionStore interface {
	core.SessionStore
	core.UsageReader
	core.StyleStore
	styleLister
	// Sessions returns every session, most recently updated first.
	Sessions(ctx context.Context) ([]*core.Session, error)
	// Usage returns the usage counters whose keys start with prefix.
	Usage(ctx context.Context, prefix string) ([]core.UsageRow, error)
	// Receive, Handled and Unhandled keep the inbox of deliveries.
	Receive(ctx context.Context, key, kind string, payload []byte, ttl time.Duration) (bool, error)
	Handled(ctx context.Context, key string) error
	Unhandled(ctx context.Context) ([]core.Delivery, error)
	// MarkEvent, RecordStart and Starts keep dedupe marks and starts.
	MarkEvent(ctx context.Context, key string, ttl time.Duration) (bool, error)
	RecordStart(ctx context.Context, name string, at time.Time, keep time.Duration) ([]time.Time, error)
	Starts(ctx context.Context, name string, since time.Time) ([]time.Time, error)
	// Location names the store for people, without credentials.
	Location() string
	Close() error
}

// openStore opens the session store of cfg for writing: the data dir
// (created if need be) or the PostgreSQL database, migrated to the current
// schema. Only the commands that make images (chat, run) use it.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (sessionStore, error) {
	if cfg.Storage.Backend == config.StoragePostgres {
		return postgres.Open(ctx, cfg.Secrets.PostgresURL, postgres.Options{Logger: log})
	}
	return storage.Open(ctx, cfg.Storage.Dir, storage.Options{Timeout: time.Duration(cfg.Storage.OpenTimeout), Logger: log})
}

// imagesDir is the directory of image files inside a data dir.
const imagesDir = "images"

// openImages opens the image store of cfg for writing: the data dir's
// images/ (created if need be), or the S3 bucket (created if missing).
func openImages(ctx context.Context, cfg config.Config, log *slog.Logger) (core.ImageStore, error) {
	if cfg.Images.Backend == config.ImagesS3 {
		return s3images.Open(ctx, s3Config(cfg, false))
	}
	return imagedir.Open(filepath.Join(cfg.Storage.Dir, imagesDir), log)
}

// readImages returns the image store of cfg for reading only: it creates
// and changes nothing.
func readImages(ctx context.Context, cfg config.Config, log *slog.Logger) (core.ImageStore, error) {
	if cfg.Images.Backend == config.ImagesS3 {
		return s3images.Open(ctx, s3Config(cfg, true))
	}
	return imagedir.ReadOnly(filepath.Join(cfg.Storage.Dir, imagesDir), log)
}

// s3Config returns the S3 image store settings of cfg.
func s3Config(cfg config.Config, readOnly bool) s3images.Config {
	return s3images.Config{Endpoint: cfg.Images.S3Endpoint, Bucket: cfg.Images.S3Bucket, Region: cfg.Images.S3Region,
		AccessKey: cfg.Secrets.AWSAccessKeyID, SecretKey: cfg.Secrets.AWSSecretAccessKey, ReadOnly: readOnly}
}

// openReadOnly opens the existing session store of cfg for reading only,
// for the commands that only report (sessions, usage): it creates,
// migrates and changes nothing. A data dir works on a read-only file
// system, and is read as a snapshot while another process holds it.
func openReadOnly(ctx context.Context, cfg config.Config, log *slog.Logger) (sessionStore, error) {
	if cfg.Storage.Backend == config.StoragePostgres {
		if cfg.Secrets.PostgresURL == "" {
			return nil, errors.New("storage.backend is postgres, but EASEL_POSTGRES_URL is not set")
		}
		return postgres.Open(ctx, cfg.Secrets.PostgresURL, postgres.Options{Logger: log, ReadOnly: true})
	}
	return storage.OpenReadOnly(ctx, cfg.Storage.Dir, storage.Options{Logger: log})
}

// openReport loads the config at configPath (with data overriding its
// data dir) and opens its session store read-only, for a command that
// only reports; it logs warnings and up to standard error.
func openReport(ctx context.Context, e *env, configPath, data string) (config.Config, *slog.Logger, sessionStore, error) {
	cfg, err := config.Load(configPath, e.getenv)
	if err != nil {
		return config.Config{}, nil, nil, err
	}
	applyOverrides(&cfg, data, "")
	log := newLogger(e.stderr, cfg.Log, slog.LevelWarn)
	db, err := openReadOnly(ctx, cfg, log)
	if err != nil {
		return config.Config{}, nil, nil, err
	}
	return cfg, log, db, nil
}

// openApp opens the store and builds the providers and engine of cfg. The
// engine reports its work to m, if not nil.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Metrics) (*app, error) {
	providers, err := newProviders(cfg, log)
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	images, err := openImages(ctx, cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{cfg: cfg, db: db, images: images, metrics: m, log: log}
	ecfg := engineConfig(cfg)
	ecfg.StyleStore = db
	if ecfg.Styles, err = configStyles(ctx, cfg, images); err != nil {
		a.closeStores()
		return nil, err
	}
	if m != nil {
		ecfg.Metrics = m
	}
	if pg, ok := db.(*postgres.DB); ok {
		if a.limits, err = pg.NewLimits(ctx, ecfg.MaxConcurrent, time.Duration(cfg.Storage.Lease)); err != nil {
			db.Close()
			return nil, err
		}
		ecfg.Limiters = a.limits.Limiters()
	}
	if a.engine, err = core.NewEngine(ecfg, db, images, providers, log); err != nil {
		a.closeStores()
		return nil, err
	}
	return a, nil
}

// engineConfig returns the engine's settings from cfg.
func engineConfig(cfg config.Config) core.EngineConfig {
	return core.EngineConfig{
		MaxConcurrent:   cfg.Engine.MaxConcurrent,
		MaxPerUser:      cfg.Engine.MaxPerUser,
		MaxQueue:        cfg.Engine.MaxQueue,
		Variations:      cfg.Engine.Variations,
		StrictRegion:    cfg.Engine.StrictRegion,
		Limits:          core.Limits{MaxN: cfg.Engine.MaxN, MaxPromptChars: cfg.Engine.MaxPromptChars},
		TurnTimeout:     time.Duration(cfg.Provider.Timeout),
		StoreRetry:      time.Duration(cfg.Engine.StoreRetry),
		DefaultProvider: cfg.ProviderName(),
		Admins:          cfg.Engine.Admins,
		SessionLink:     resultLinks(cfg),
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
// rest stay recorded and resume on the next start), then closes the stores.
func (a *app) close(ctx context.Context) error {
	err := a.engine.Close(ctx)
	return errors.Join(err, a.closeStores())
}

// closeStores frees the shared limits a holds, and closes the store.
func (a *app) closeStores() error {
	if a.shards != nil {
		a.shards.Close()
	}
	if a.limits != nil {
		a.limits.Close()
	}
	return a.db.Close()
}

// abort closes a at once, for a command that fails before it started work.
func (a *app) abort() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = a.close(ctx)
}
