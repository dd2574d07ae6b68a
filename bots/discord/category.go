package discord

import (
	"context"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Bounds of the categories learned over REST: the gateway's state knows
// the channels of the guilds it announced, and moves between categories
// as they happen; a channel looked up while it does not (at start, when
// deliveries left by an earlier process are handled before the gateway
// connects) is asked of Discord once, and its answer kept for a while.
const (
	categoryTTL   = 10 * time.Minute
	maxCategories = 10000
)

// categories remembers the category of channels looked up over REST.
type categories struct {
	mu sync.Mutex
	m  map[string]categoryEntry
}

// categoryEntry is a channel's category ("" for none) and when it was
// learned.
type categoryEntry struct {
	category string
	at       time.Time
}

// get returns the category remembered for channel, unless it is older
// than categoryTTL at now.
func (c *categories) get(channel string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[channel]
	if !ok || now.Sub(e.at) >= categoryTTL {
		return "", false
	}
	return e.category, true
}

// put remembers channel's category, learned at now. At maxCategories it
// first forgets the entries past categoryTTL, and if none is, one at
// random.
func (c *categories) put(channel, category string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]categoryEntry{}
	}
	if _, known := c.m[channel]; !known && len(c.m) >= maxCategories {
		for id, e := range c.m {
			if now.Sub(e.at) >= categoryTTL {
				delete(c.m, id)
			}
		}
		for id := range c.m {
			if len(c.m) < maxCategories {
				break
			}
			delete(c.m, id)
		}
	}
	c.m[channel] = categoryEntry{category: category, at: now}
}

// category returns the category of a guild channel (a thread counts as
// its parent channel), which the engine takes as core.Message.Category so
// that a category's defaults apply to its channels: from the gateway's
// state, else remembered from an earlier lookup, else asked of Discord.
// It returns "" outside a guild, for a channel in no category, and when
// the lookup fails (logged): the channel's own defaults still apply.
func (b *Bot) category(ctx context.Context, guild, channel string) string {
	if guild == "" || channel == "" {
		return ""
	}
	for range 2 { // a thread, then its parent channel
		parent, thread, err := b.parentOf(ctx, channel)
		if err != nil {
			b.log.Warn("looking up a channel's category failed; its category's defaults do not apply", "channel", channel, "err", err)
			return ""
		}
		if !thread {
			return parent
		}
		channel = parent
	}
	return ""
}

// parentOf returns the parent of a channel: a thread's channel, or a
// channel's category; thread says which.
func (b *Bot) parentOf(ctx context.Context, channel string) (parent string, thread bool, err error) {
	if c, err := b.dg.State.Channel(channel); err == nil {
		b.dg.State.RLock()
		defer b.dg.State.RUnlock()
		return c.ParentID, c.IsThread(), nil
	}
	now := time.Now()
	if parent, ok := b.categories.get(channel, now); ok {
		return parent, false, nil
	}
	c, err := b.dg.Channel(channel, discordgo.WithContext(ctx))
	if err != nil {
		return "", false, err
	}
	if !c.IsThread() {
		b.categories.put(channel, c.ParentID, now)
	}
	return c.ParentID, c.IsThread(), nil
}
