package slack

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig for attachments
	_ "image/png"
	"io"
	"net/http"
	"net/url"

	slackapi "github.com/slack-go/slack"
	_ "golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
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

// downloadClient returns a copy of base that follows a redirect only to a
// host trusted with the bot token, and at most maxRedirects times.
func downloadClient(base *http.Client, trusted func(*url.URL) bool) *http.Client {
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects || !trusted(req.URL) {
			return http.ErrUseLastResponse
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
// trusted host, reading at most cfg.MaxAttachment bytes, and checks that it
// is an image.
func (b *Bot) download(ctx context.Context, f slackapi.File) (core.Image, error) {
	name, limit := either(f.Name, f.ID), b.cfg.MaxAttachment
	if int64(f.Size) > limit {
		return core.Image{}, tooLarge(name, int64(f.Size), limit)
	}
	raw := either(f.URLPrivateDownload, f.URLPrivate)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || !b.trusted(u) {
		b.log.Warn("slack: attachment not on a Slack host; not fetched", "file", f.ID, "url_host", hostOf(u))
		return core.Image{}, core.Errorf(core.Invalid, "%s is not stored on Slack, so I can't use it: upload the image itself", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return core.Image{}, fmt.Errorf("slack: download %s: %w", f.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+b.cfg.BotToken)
	resp, err := b.files.Do(req)
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "I couldn't download %s from Slack; try again", name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("redir") != "" {
		return core.Image{}, core.Errorf(core.Unavailable, "Slack would not let me download %s (HTTP %d): Easel needs the files:read scope and access to the conversation", name, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "the download of %s broke off; try again", name)
	}
	if int64(len(data)) > limit {
		return core.Image{}, tooLarge(name, int64(len(data)), limit)
	}
	return checkImage(name, data)
}

// checkImage returns data as an input image if its bytes are PNG, JPEG or
// WebP and its header gives a size within the limits. Nothing is decoded.
func checkImage(name string, data []byte) (core.Image, error) {
	mime := http.DetectContentType(data)
	switch mime {
	case "image/png", "image/jpeg", "image/webp":
	default:
		return core.Image{}, core.Errorf(core.Invalid, "%s is not an image I can use (it looks like %s): attach a PNG, JPEG or WebP image", name, mime)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return core.Image{}, core.WrapError(core.Invalid, err, "%s is damaged or not really an image: attach a PNG, JPEG or WebP image", name)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxEdge || cfg.Height > maxEdge || cfg.Width*cfg.Height > maxPixels {
		return core.Image{}, core.Errorf(core.Invalid, "%s is %dx%d pixels; I take images up to %d pixels on a side and %d megapixels", name, cfg.Width, cfg.Height, maxEdge, maxPixels/1_000_000)
	}
	return core.Image{Data: data, MIME: mime, Name: name}, nil
}

func tooLarge(name string, size, limit int64) error {
	return core.Errorf(core.Invalid, "%s is %.1f MB; I take images up to %.0f MB", name, float64(size)/(1<<20), float64(limit)/(1<<20))
}

func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}
