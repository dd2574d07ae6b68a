package discord

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
)

// Bounds of a catch-up.
const (
	// catchUpAge is how far back a catch-up looks: threads whose last
	// message is older, and older messages, are left alone. It is shorter
	// than dedupeTTL, so every message handled before is known.
	catchUpAge = 24 * time.Hour
	// catchUpThreads bounds the threads of a guild caught up on at each
	// connect, the most recently active first.
	catchUpThreads = 50
	// catchUpMessages bounds the messages read in one channel: the newest,
	// one page of Discord's REST API.
	catchUpMessages = 100
)

// onGuild catches up, when a guild becomes available after an IDENTIFY
// (GUILD_CREATE), on the messages posted while Easel was not connected:
// Discord does not resend those to a new session. It queues a catch-up on
// the lane of each recently active thread of the guild (at most
// catchUpThreads, whose last message is less than catchUpAge old), ahead of
// the messages the gateway sends for it after GUILD_CREATE, so each is
// handled in order. A thread that is a session is read, and then, once,
// its parent channel, for mentions of Easel that would have started
// sessions. It does no I/O: it runs on the gateway's reader.
func (b *Bot) onGuild(ctx context.Context, g *discordgo.Guild) {
	if g == nil || g.Unavailable {
		return
	}
	since := time.Now().Add(-catchUpAge)
	threads := recentThreads(g.Threads, since, catchUpThreads)
	var mu sync.Mutex
	read := map[string]bool{} // parent channels queued
	for _, t := range threads {
		b.inOrder(ctx, t.ID, func(tctx context.Context) {
			if !b.isSession(tctx, t.ID) {
				return
			}
			b.catchUp(tctx, g.ID, t.ID, since)
			mu.Lock()
			queued := read[t.ParentID]
			read[t.ParentID] = true
			mu.Unlock()
			if !queued && t.ParentID != "" {
				b.inOrder(ctx, t.ParentID, func(ctx context.Context) { b.catchUp(ctx, g.ID, t.ParentID, since) })
			}
		})
	}
}

// recentThreads returns the threads whose last message was posted after
// since, most recent first, at most n.
func recentThreads(channels []*discordgo.Channel, since time.Time, n int) []*discordgo.Channel {
	var out []*discordgo.Channel
	for _, c := range channels {
		if c != nil && c.IsThread() && c.LastMessageID != "" && idTime(c.LastMessageID).After(since) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *discordgo.Channel) int { return cmpID(b.LastMessageID, a.LastMessageID) })
	return out[:min(len(out), n)]
}

// isSession reports whether a thread has a session.
func (b *Bot) isSession(ctx context.Context, thread string) bool {
	_, err := b.engine.Session(ctx, Platform, thread)
	return err == nil
}

// catchUp reads the newest catchUpMessages messages of a channel of guild
// and takes those posted after since, oldest first, as if the gateway had
// just sent them: each is recorded and handled unless it was before.
// Discord's rate limits are waited out by discordgo.
func (b *Bot) catchUp(ctx context.Context, guild, channel string, since time.Time) {
	msgs, err := b.dg.ChannelMessages(channel, catchUpMessages, "", "", "", discordgo.WithContext(ctx))
	if err != nil {
		b.log.Warn("reading the messages missed in a channel failed", "channel", channel, "err", err)
		return
	}
	members := map[string]*discordgo.Member{}
	took, known := 0, 0
	for _, m := range slices.Backward(msgs) { // msgs are newest first
		if !fromPerson(m) || !idTime(m.ID).After(since) {
			continue
		}
		// The REST API leaves out what the gateway adds: the guild, and
		// the author's roles, which access rules may need.
		m.GuildID = guild
		if m.Member == nil {
			m.Member = b.member(ctx, guild, m.Author.ID, members)
		}
		switch b.take(ctx, m) {
		case handled:
			took++
		case seen:
			known++
		}
	}
	b.log.Info("read back the messages posted while Easel was away", "channel", channel, "handled", took, "known", known)
}

// member returns a guild member, from cache or over REST, or nil if the
// lookup fails.
func (b *Bot) member(ctx context.Context, guild, user string, cache map[string]*discordgo.Member) *discordgo.Member {
	if m, ok := cache[user]; ok {
		return m
	}
	m, err := b.dg.GuildMember(guild, user, discordgo.WithContext(ctx))
	if err != nil {
		b.log.Warn("looking up a member failed", "guild", guild, "user", user, "err", err)
		m = nil
	}
	cache[user] = m
	return m
}

// idTime returns the time a snowflake id was made, or the zero time.
func idTime(id string) time.Time {
	t, err := discordgo.SnowflakeTimestamp(id)
	if err != nil {
		return time.Time{}
	}
	return t
}

// cmpID orders snowflakes numerically.
func cmpID(a, b string) int {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	return cmp.Compare(x, y)
}
