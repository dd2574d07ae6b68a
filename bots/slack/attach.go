package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// Attachment limits besides Config.MaxAttachment: how many images one
// message may carry, and how large they may be in pixels (checked from the
// header, before anything decodes them).
const (
	maxInputs    = 8
	maxEdge      = 12000
	maxPixels    = 50_000_000
	maxRedirects = 3
)

// errOffSlack is the error of a download redirected to a host not trusted
// with the bot token; the redirect is not followed.
var errOffSlack = errors.New("redirect off Slack's hosts refused")

// downloadClient returns a copy of base that follows a redirect only to a
// host trusted with the bot token, and at most maxRedirects times. Any
// other redirect fails the request before it is sent, so the token never
// leaves Slack's hosts, even on a hop.
func downloadClient(base *http.Client, trusted func(*url.URL) bool) *http.Client {
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !trusted(req.URL) {
			return errOffSlack
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}

// attachments downloads the files attached to a message as input images.
// It returns an Invalid or Unavailable *core.Error naming the first file
// that cannot be used.
func (b *Bot) attachments(ctx context.Context, files []slackapi.File) ([]core.Image, error) {
	if len(files) > maxInputs {
		return nil, core.Errorf(core.Invalid, "%d files are attached; I can use at most %d images per message", len(files), maxInputs)
	}
	var images []core.Image
	for _, f := range files {
		img, err := b.download(ctx, f)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return images, nil
}

// download fetches one attached file with the bot token, only from a
// trusted host, reading at most cfg.MaxAttachment bytes (the body is never
// read past that, whatever size Slack or the server declared), and checks
// with imagecheck that it is an image.
func (b *Bot) download(ctx context.Context, f slackapi.File) (core.Image, error) {
	name, limit := imagecheck.DisplayName(either(f.Name, f.ID)), b.cfg.MaxAttachment
	if int64(f.Size) > limit {
		return core.Image{}, tooLarge(name, int64(f.Size), limit)
	}
	raw := either(f.URLPrivateDownload, f.URLPrivate)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.User != nil || !b.trusted(u) {
		b.log.Warn("slack: attachment not on a Slack host; not fetched", "file", f.ID, "url_host", hostOf(u))
		return core.Image{}, notOnSlack(name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return core.Image{}, fmt.Errorf("slack: download %s: %w", f.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+b.cfg.BotToken)
	resp, err := b.files.Do(req)
	if errors.Is(err, errOffSlack) {
		b.log.Warn("slack: attachment download redirected off Slack's hosts; not followed", "file", f.ID)
		return core.Image{}, notOnSlack(name)
	}
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "I couldn't download %s from Slack; try again", name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("redir") != "" {
		return core.Image{}, core.Errorf(core.Unavailable, "Slack would not let me download %s (HTTP %d): Easel needs the files:read scope and access to the conversation", name, resp.StatusCode)
	}
	if resp.ContentLength > limit {
		return core.Image{}, tooLarge(name, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "the download of %s broke off; try again", name)
	}
	if int64(len(data)) > limit {
		return core.Image{}, tooLarge(name, -1, limit)
	}
	return imagecheck.Check(name, data, imagecheck.Limits{MaxBytes: limit, MaxSide: maxEdge, MaxPixels: maxPixels})
}

func notOnSlack(name string) error {
	return core.Errorf(core.Invalid, "%s is not stored on Slack, so I can't use it: upload the image itself", name)
}

// tooLarge says that an attachment of size bytes (-1 when only known to
// be over limit) is too large.
func tooLarge(name string, size, limit int64) error {
	if size < 0 {
		return core.Errorf(core.Invalid, "%s is larger than %.0f MB; I take images up to %.0f MB", name, float64(limit)/(1<<20), float64(limit)/(1<<20))
	}
	return core.Errorf(core.Invalid, "%s is %.1f MB; I take images up to %.0f MB", name, float64(size)/(1<<20), float64(limit)/(1<<20))
}

func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}
