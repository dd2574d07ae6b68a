package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
	"github.com/easel-bot/easel/storage/postgres"
)

const storageUsage = `Usage: easel storage copy [-config FILE] [-from DIR]

copy moves the sessions, images, usage counters and Slack installations
(their tokens still encrypted with EASEL_TOKEN_KEY) of a bbolt data dir into
the store the config file names (storage.backend = "postgres", and
images.backend "dir" or "s3"), so a team can grow without losing history.
It reads the data dir without changing it and can be run again: what is
already there is left alone, and sessions updated since are copied anew.
Stop easel run on the data dir first, so that nothing changes while it copies.`

// cmdStorage runs a storage subcommand: copy.
func cmdStorage(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, storageUsage)
		if len(args) == 0 {
			return usageError{"missing subcommand: copy"}
		}
		return nil
	}
	if args[0] != "copy" {
		return usageError{fmt.Sprintf("unknown subcommand %q: use copy", args[0])}
	}
	fs := newFlagSet(e, "storage copy", "storage copy [flags]")
	configPath := fs.String("config", "", "TOML config `file` naming the store to copy into")
	from := fs.String("from", "", "the bbolt data `dir` to copy from (default: storage.dir)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	if cfg.Storage.Backend != config.StoragePostgres {
		return usageError{`storage copy copies into PostgreSQL: set storage.backend = "postgres" in the config file (and EASEL_POSTGRES_URL)`}
	}
	if missing := cfg.MissingSecrets(); len(missing) > 0 {
		return fmt.Errorf("missing environment variables: %v", missing)
	}
	source := cfg.Storage.Dir
	if *from != "" {
		source = *from
	}
	log := newLogger(e.stderr, cfg.Log, slog.LevelWarn)

	src, err := storage.OpenReadOnly(ctx, source, storage.Options{Logger: log})
	if err != nil {
		return err
	}
	defer src.Close()
	srcImages, err := imagedir.ReadOnly(filepath.Join(source, imagesDir), log)
	if err != nil {
		return err
	}
	dst, err := postgres.Open(ctx, cfg.Secrets.PostgresURL, postgres.Options{Logger: log})
	if err != nil {
		return err
	}
	defer dst.Close()
	dstImages, err := openImages(ctx, cfg, log)
	if err != nil {
		return err
	}
	c := &copier{src: src, srcImages: srcImages, dst: dst, dstImages: dstImages}
	if err := c.copy(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "copied %d sessions, %d images (%d uploaded), %d usage counters, %d Slack installations, %d styles and %d channel defaults from %s to %s\n",
		c.sessions, c.images, c.uploaded, c.counters, c.installs, c.styles, c.defaults, src.Location(), dst.Location())
	if n := c.waiting; n > 0 {
		fmt.Fprintf(e.stdout, "not copied: %d deliveries still waiting in %s's inbox; start easel run on it once to handle them, then copy again\n", n, source)
	}
	return nil
}

// copier copies a bbolt data dir into PostgreSQL and an image store.
type copier struct {
	src       *storage.DB
	srcImages core.ImageStore
	dst       *postgres.DB
	dstImages core.ImageStore

	sessions, images, uploaded, counters, installs, styles, defaults, waiting int
	seen                                                                      map[string]bool // image hashes done
}

// copy copies every session (its images first, so no copied session names
// a missing image), then the usage counters, the Slack installations, the
// styles and the channel defaults.
func (c *copier) copy(ctx context.Context) error {
	c.seen = map[string]bool{}
	list, err := c.src.Sessions(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		for _, ref := range imagesOf(s) {
			if err := c.copyImage(ctx, ref); err != nil {
				return fmt.Errorf("session %s: %w", s.ID, err)
			}
		}
		bound, err := c.src.SessionByThread(ctx, s.Platform, s.Thread)
		if err != nil && core.KindOf(err) != core.NotFound {
			return err
		}
		if err := c.dst.Import(ctx, s, bound != nil && bound.ID == s.ID); err != nil {
			return err
		}
		c.sessions++
	}
	rows, err := c.src.Usage(ctx, "")
	if err != nil {
		return err
	}
	if err := c.dst.SetUsage(ctx, rows); err != nil {
		return err
	}
	c.counters = len(rows)
	installs, err := c.src.Installations(ctx)
	if err != nil {
		return err
	}
	for _, rec := range installs {
		if err := c.dst.SaveInstallation(ctx, rec); err != nil {
			return err
		}
	}
	c.installs = len(installs)
	if err := c.copyStyles(ctx); err != nil {
		return err
	}
	waiting, err := c.src.Unhandled(ctx)
	if err != nil {
		return err
	}
	c.waiting = len(waiting)
	return nil
}

// copyStyles copies the styles set in chat, their reference images first,
// and every channel's defaults.
func (c *copier) copyStyles(ctx context.Context) error {
	err := c.src.EveryStyle(ctx, func(platform, workspace string, s core.Style) error {
		for _, ref := range s.Refs {
			if err := c.copyImage(ctx, ref); err != nil {
				return fmt.Errorf("style %s: %w", s.Name, err)
			}
		}
		c.styles++
		return c.dst.PutStyle(ctx, platform, workspace, s)
	})
	if err != nil {
		return err
	}
	return c.src.EveryChannelDefaults(ctx, func(platform, workspace, channel string, d core.ChannelDefaults) error {
		c.defaults++
		return c.dst.PutChannelDefaults(ctx, platform, workspace, channel, d)
	})
}

// copyImage copies the bytes of ref unless the target has them whole.
func (c *copier) copyImage(ctx context.Context, ref core.ImageRef) error {
	if c.seen[ref.SHA256] {
		return nil
	}
	c.seen[ref.SHA256] = true
	c.images++
	if _, err := c.dstImages.Get(ctx, ref); err == nil {
		return nil
	}
	img, err := c.srcImages.Get(ctx, ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref.SHA256, err)
	}
	got, err := c.dstImages.Put(ctx, img)
	if err != nil {
		return err
	}
	if got.SHA256 != ref.SHA256 {
		return errors.New("image " + ref.SHA256 + " was stored under another hash")
	}
	c.uploaded++
	return nil
}

// imagesOf returns every image s names: its versions' and its turns'
// attachments.
func imagesOf(s *core.Session) []core.ImageRef {
	var refs []core.ImageRef
	for _, v := range s.Versions {
		refs = append(refs, v.Image)
	}
	for _, t := range s.Turns {
		refs = append(refs, t.Inputs...)
	}
	return refs
}
