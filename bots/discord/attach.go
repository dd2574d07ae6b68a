package discord

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // registers GIF with image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/bwmarrin/discordgo"
	_ "golang.org/x/image/webp"

	"github.com/easel-bot/easel/core"
)

// Limits on attachments used as inputs.
const (
	maxInputBytes  = 20 << 20   // per attachment
	maxInputPixels = 40_000_000 // about 160 MB decoded
	maxInputs      = 10         // Discord's own limit per message
)

// Upload limits: Discord lets bots send 10 MiB per message, more in guilds
// boosted to tier 2 (50 MiB) or 3 (100 MiB).
const (
	defaultUploadLimit = 10 << 20
	tier2UploadLimit   = 50 << 20
	tier3UploadLimit   = 100 << 20
)

// inputTypes are the media types accepted as inputs, as sniffed.
var inputTypes = []string{"image/png", "image/jpeg", "image/webp", "image/gif"}

// cdn downloads attachments from Discord's CDN hosts only, without the bot
// token (the CDN needs none), and never follows a redirect elsewhere.
type cdn struct {
	client *http.Client
	// hosts are the scheme://host origins allowed: Discord's CDN, and the
	// API's own host when api_url points somewhere else (a proxy or a fake).
	hosts []string
}

func newCDN(api *url.URL, base *http.Client) cdn {
	c := cdn{hosts: []string{"https://cdn.discordapp.com", "https://media.discordapp.net"}}
	if origin := api.Scheme + "://" + api.Host; api.String() != DefaultAPIURL {
		c.hosts = append(c.hosts, origin)
	}
	client := *base
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 3 || !c.allowed(r.URL) {
			return fmt.Errorf("redirect to %s refused", r.URL.Redacted())
		}
		return nil
	}
	c.client = &client
	return c
}

func (c cdn) allowed(u *url.URL) bool {
	return slices.Contains(c.hosts, u.Scheme+"://"+u.Host)
}

// inputs downloads and checks the images attached to a message. Anything
// wrong gets an Invalid *core.Error naming the file, and nothing is
// returned.
func (b *Bot) inputs(ctx context.Context, atts []*discordgo.MessageAttachment) ([]core.Image, error) {
	if len(atts) > maxInputs {
		return nil, core.Errorf(core.Invalid, "attach at most %d images", maxInputs)
	}
	var imgs []core.Image
	for _, a := range atts {
		img, err := b.cdn.image(ctx, a)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// image downloads one attachment, capping the bytes read, and checks that
// it is a PNG, JPEG, WebP or GIF of a sensible size before anything decodes
// it.
func (c cdn) image(ctx context.Context, a *discordgo.MessageAttachment) (core.Image, error) {
	name := a.Filename
	if a.Size > maxInputBytes {
		return core.Image{}, core.Errorf(core.Invalid, "%s is %s; attached images can be at most %s", name, size(int64(a.Size)), size(maxInputBytes))
	}
	u, err := url.Parse(a.URL)
	if err != nil || !c.allowed(u) {
		return core.Image{}, core.Errorf(core.Invalid, "%s is not on Discord's CDN, so Easel won't fetch it", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return core.Image{}, fmt.Errorf("discord: download %s: %w", name, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "could not download %s from Discord; try again", name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return core.Image{}, core.Errorf(core.Unavailable, "could not download %s from Discord (HTTP %d); try again", name, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInputBytes+1))
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "could not download %s from Discord; try again", name)
	}
	if len(data) > maxInputBytes {
		return core.Image{}, core.Errorf(core.Invalid, "%s is larger than %s, the most an attached image can be", name, size(maxInputBytes))
	}
	return checkImage(name, data)
}

// checkImage sniffs data's type and reads its dimensions without decoding
// the pixels.
func checkImage(name string, data []byte) (core.Image, error) {
	mime := http.DetectContentType(data)
	if !slices.Contains(inputTypes, mime) {
		return core.Image{}, core.Errorf(core.Invalid, "%s is not an image Easel can use: attach a PNG, JPEG, WebP or GIF", name)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	switch {
	case err != nil:
		return core.Image{}, core.WrapError(core.Invalid, err, "%s could not be read as an image; is it damaged?", name)
	case cfg.Width <= 0 || cfg.Height <= 0:
		return core.Image{}, core.Errorf(core.Invalid, "%s has no pixels", name)
	case cfg.Width*cfg.Height > maxInputPixels || cfg.Width > 1<<15 || cfg.Height > 1<<15:
		return core.Image{}, core.Errorf(core.Invalid, "%s is %dx%d pixels; attached images can be at most %d megapixels",
			name, cfg.Width, cfg.Height, maxInputPixels/1_000_000)
	}
	return core.Image{Data: data, MIME: mime, Name: name}, nil
}

// uploadLimit returns the most bytes the bot may upload in one message in a
// guild (or a DM, for ""), from the boost tier the gateway reported.
func (b *Bot) uploadLimit(guildID string) int64 {
	if guildID == "" {
		return defaultUploadLimit
	}
	g, err := b.dg.State.Guild(guildID)
	if err != nil {
		return defaultUploadLimit
	}
	b.dg.State.RLock()
	tier := g.PremiumTier
	b.dg.State.RUnlock()
	switch tier {
	case discordgo.PremiumTier2:
		return tier2UploadLimit
	case discordgo.PremiumTier3:
		return tier3UploadLimit
	}
	return defaultUploadLimit
}

// size renders a byte count the way Discord shows upload limits.
func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KB", max(n>>10, 1))
}
