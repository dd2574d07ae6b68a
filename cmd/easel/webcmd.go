package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/gallery"
)

const webUsage = `Usage: easel web link [-session ID] [-ttl 24h] [-config FILE]

  link    print a signed link to the web gallery of easel run, under
          web.public_url, signed with EASEL_WEB_KEY: with -session, to that
          session's page (its images, and nothing else); without, to the
          whole gallery (every session and the usage page), for admins.
          Anyone with the link sees what it opens until it expires.`

func cmdWeb(_ context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "link" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(e.stderr, webUsage)
			return nil
		}
		return usageError{"use: easel web link [-session ID] [-ttl 24h]"}
	}
	fs := newFlagSet(e, "web link", "web link [flags]")
	configPath := fs.String("config", "", "TOML config `file`, for web.public_url (default: the embedded defaults)")
	session := fs.String("session", "", "link to this session `id` only (default: the whole gallery)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the link works, at most "+gallery.MaxTTL.String())
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *ttl <= 0 || *ttl > gallery.MaxTTL {
		return usageError{fmt.Sprintf("-ttl must be more than 0 and at most %s, got %s", gallery.MaxTTL, *ttl)}
	}

	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	if cfg.Web.PublicURL == "" {
		return errors.New("web.public_url is not set: the link needs the address people reach the web server at")
	}
	key, err := cfg.Secrets.WebSigningKey()
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("EASEL_WEB_KEY is not set: it signs the links (base64 of at least 32 random bytes, such as `openssl rand -base64 32` prints), and easel run must have the same")
	}
	l, err := gallery.NewLinker(key, cfg.Web.PublicURL)
	if err != nil {
		return err
	}
	var link string
	if *session != "" {
		link, err = l.SessionLink(*session, *ttl)
	} else {
		link, err = l.GalleryLink(*ttl)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, link)
	return nil
}
