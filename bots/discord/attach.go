package discord

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// Upload limits: Discord lets bots send 10 MiB per message, more in guilds
// boosted to tier 2 (50 MiB) or 3 (100 MiB).
const (
	defaultUploadLimit = 10 << 20
	tier2UploadLimit   = 50 << 20
	tier3UploadLimit   = 100 << 20
)

// newFetcher returns the downloader of attachments: from Discord's CDN
// only (and the API's own host when api_url points elsewhere: a proxy or a
// fake), without the bot token (the CDN needs none), within limits.
func newFetcher(api *url.URL, client *http.Client, limits imagecheck.Limits) *imagecheck.Fetcher {
	return imagecheck.NewFetcher(imagecheck.FetchConfig{Client: client, Allowed: attachmentHosts(api), Limits: limits, Where: "Discord"})
}

// attachmentHosts returns whether a URL is on Discord's CDN, or on api's
// own host when api is not Discord's.
func attachmentHosts(api *url.URL) func(*url.URL) bool {
	origins := []string{"https://cdn.discordapp.com", "https://media.discordapp.net"}
	if api.String() != DefaultAPIURL {
		origins = append(origins, api.Scheme+"://"+api.Host)
	}
	return func(u *url.URL) bool { return slices.Contains(origins, u.Scheme+"://"+u.Host) }
}

// inputs downloads and checks the images attached to a message. Anything
// wrong gets an Invalid or Unavailable *core.Error naming the file, and
// nothing is returned.
func (b *Bot) inputs(ctx context.Context, atts []*discordgo.MessageAttachment) ([]core.Image, error) {
	files := make([]imagecheck.Attachment, len(atts))
	for i, a := range atts {
		files[i] = attachment(a)
	}
	return b.files.FetchAll(ctx, files)
}

// attachment describes an attachment for the fetcher; a missing one has
// no URL, and is refused.
func attachment(a *discordgo.MessageAttachment) imagecheck.Attachment {
	if a == nil {
		return imagecheck.Attachment{}
	}
	return imagecheck.Attachment{Name: a.Filename, URL: a.URL, Size: int64(a.Size)}
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
