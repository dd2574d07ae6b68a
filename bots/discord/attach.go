package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// Limits on attachments used as inputs.
const (
	maxInputBytes  = 20 << 20   // per attachment
	maxInputPixels = 40_000_000 // about 160 MB decoded
	maxInputSide   = 1 << 15    // pixels, width or height
	maxInputs      = 10         // Discord's own limit per message
)

// inputLimits are the limits imagecheck applies to an attachment.
var inputLimits = imagecheck.Limits{MaxBytes: maxInputBytes, MaxSide: maxInputSide, MaxPixels: maxInputPixels}

// Upload limits: Discord lets bots send 10 MiB per message, more in guilds
// boosted to tier 2 (50 MiB) or 3 (100 MiB).
const (
	defaultUploadLimit = 10 << 20
	tier2UploadLimit   = 50 << 20
	tier3UploadLimit   = 100 << 20
)

// errOffCDN is the error of a download redirected off the allowed hosts;
// the redirect is not followed.
var errOffCDN = errors.New("redirect off Discord's CDN refused")

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
		if !c.allowed(r.URL) {
			return errOffCDN
		}
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return nil
	}
	c.client = &client
	return c
}

// allowed reports whether u is on one of c's hosts, without credentials.
func (c cdn) allowed(u *url.URL) bool {
	return u.User == nil && slices.Contains(c.hosts, u.Scheme+"://"+u.Host)
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

// image downloads one attachment, reading at most maxInputBytes of it
// (never past that, whatever size Discord or the server declared), and
// checks with imagecheck that it is a PNG, JPEG or WebP image of a sensible
// size before anything decodes it.
func (c cdn) image(ctx context.Context, a *discordgo.MessageAttachment) (core.Image, error) {
	if a == nil {
		return core.Image{}, core.Errorf(core.Invalid, "the attachment is missing; attach it again")
	}
	name := imagecheck.DisplayName(a.Filename)
	if a.Size > maxInputBytes {
		return core.Image{}, core.Errorf(core.Invalid, "%s is %s; attached images can be at most %s", name, size(int64(a.Size)), size(maxInputBytes))
	}
	u, err := url.Parse(a.URL)
	if err != nil || !c.allowed(u) {
		return core.Image{}, offCDN(name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return core.Image{}, fmt.Errorf("discord: download %s: %w", name, err)
	}
	resp, err := c.client.Do(req)
	if errors.Is(err, errOffCDN) {
		return core.Image{}, offCDN(name)
	}
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "could not download %s from Discord; try again", name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return core.Image{}, core.Errorf(core.Unavailable, "could not download %s from Discord (HTTP %d); try again", name, resp.StatusCode)
	}
	if resp.ContentLength > maxInputBytes {
		return core.Image{}, tooLarge(name)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInputBytes+1))
	if err != nil {
		return core.Image{}, core.WrapError(core.Unavailable, err, "could not download %s from Discord; try again", name)
	}
	if len(data) > maxInputBytes {
		return core.Image{}, tooLarge(name)
	}
	return checkImage(name, data)
}

func offCDN(name string) error {
	return core.Errorf(core.Invalid, "%s is not on Discord's CDN, so Easel won't fetch it", name)
}

func tooLarge(name string) error {
	return core.Errorf(core.Invalid, "%s is larger than %s, the most an attached image can be", name, size(maxInputBytes))
}

// checkImage sniffs data's type and reads its dimensions without decoding
// the pixels; see imagecheck.Check.
func checkImage(name string, data []byte) (core.Image, error) {
	return imagecheck.Check(name, data, inputLimits)
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
