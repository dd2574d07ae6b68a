package discord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// onMessage queues a MESSAGE_CREATE on its channel's lane (see inOrder),
// where it is recorded and handled (see take). Messages of bots, Easel
// included, and other than plain messages and replies are ignored. It does
// no I/O: it runs on the gateway's reader.
func (b *Bot) onMessage(ctx context.Context, m *discordgo.Message) {
	if !fromPerson(m) {
		return
	}
	b.inOrder(ctx, m.ChannelID, func(ctx context.Context) {
		if b.take(ctx, m) == seen {
			b.log.Info("duplicate delivery ignored", "message", m.ID)
		}
	})
}

// fromPerson reports whether m is a person's message or reply, which
// Easel may act on.
func fromPerson(m *discordgo.Message) bool {
	return m != nil && m.Author != nil && !m.Author.Bot && (m.Type == discordgo.MessageTypeDefault || m.Type == discordgo.MessageTypeReply)
}

// route returns what Easel does with a person's message, or nil for
// nothing: a reply in a session thread refines its image; a mention
// elsewhere starts a session (in a new thread on the message, or in the
// thread it was posted in); a DM talks to the DM's session. The work it
// returns takes the message's inbox key. A blank reply in a session thread
// (Discord blanks a reply that does not mention Easel without the Message
// Content intent) gets nothing but, once per thread, a hint to mention
// Easel.
func (b *Bot) route(ctx context.Context, m *discordgo.Message) func(ctx context.Context, key string) {
	if m.GuildID == "" {
		return func(ctx context.Context, key string) { b.direct(ctx, key, m) }
	}
	mentioned := mentions(m, b.me())
	sess, err := b.engine.Session(ctx, Platform, m.ChannelID)
	switch {
	case err == nil && blank(m):
		if !mentioned && !b.cfg.MessageContent {
			b.hint(ctx, m)
		}
	case err == nil:
		return func(ctx context.Context, key string) { b.refine(ctx, key, m, sess) }
	case core.KindOf(err) != core.NotFound:
		b.log.Error("looking up a thread's session failed", "channel", m.ChannelID, "err", err)
	case mentioned:
		return func(ctx context.Context, key string) { b.mention(ctx, key, m) }
	}
	return nil
}

// refine handles a reply in a session thread.
func (b *Bot) refine(ctx context.Context, key string, m *discordgo.Message, sess *core.Session) {
	if !b.allowed(ctx, m, sess.Channel) {
		return
	}
	th := b.thread(m.ChannelID, sess.Channel, m.GuildID)
	b.submit(ctx, th, m, core.Message{Channel: sess.Channel, Category: b.category(ctx, m.GuildID, sess.Channel), Thread: m.ChannelID, Delivery: key})
}

// hint tells a thread, the first time only, that replies must mention
// Easel, in a reply to the message it could not read.
func (b *Bot) hint(ctx context.Context, m *discordgo.Message) {
	first, err := b.events.MarkEvent(ctx, "discord:hint:"+m.ChannelID, hintTTL)
	if err != nil || !first {
		return
	}
	b.replyTo(ctx, m, fmt.Sprintf("👋 I can only read replies that mention me: start yours with <@%s>, "+
		"e.g. `@Easel make the sky orange`. (A server admin can give Easel the Message Content intent to drop this.)", b.me()))
}

// mention starts a session for "@Easel prompt" outside a session thread:
// in the thread it was posted in, or in a new thread started on the message
// once the engine accepted it.
func (b *Bot) mention(ctx context.Context, key string, m *discordgo.Message) {
	ch, err := b.channel(ctx, m.ChannelID)
	if err != nil {
		b.log.Warn("looking up a mention's channel failed; assuming a text channel", "err", err)
		ch = discordgo.Channel{ID: m.ChannelID, Type: discordgo.ChannelTypeGuildText}
	}
	channel := ch.ID
	if ch.IsThread() {
		channel = ch.ParentID
	}
	if !b.allowed(ctx, m, channel) {
		return
	}
	category := b.category(ctx, m.GuildID, channel)
	if ch.IsThread() {
		b.submit(ctx, b.thread(ch.ID, ch.ParentID, m.GuildID), m, core.Message{Channel: ch.ParentID, Category: category, Thread: ch.ID, Delivery: key})
		return
	}
	th := b.pendingThread(m.ID, m.ChannelID, m.GuildID)
	if !b.submit(ctx, th, m, core.Message{Channel: m.ChannelID, Category: category, Thread: m.ID, Delivery: key}) {
		th.opened()
		return
	}
	if err := b.startThread(ctx, th, m.ID, stripMention(m.Content, b.me())); err != nil {
		b.problem(ctx, m, b.userMessage(err, "starting a thread failed"))
	}
}

// direct handles a DM. The DM channel holds one session at a time: "new"
// makes the next prompt start a fresh one, "new <prompt>" starts it at once.
func (b *Bot) direct(ctx context.Context, key string, m *discordgo.Message) {
	if !b.allowed(ctx, m, m.ChannelID) {
		return
	}
	text := stripMention(m.Content, b.me())
	word, rest, _ := strings.Cut(text, " ")
	isNew := strings.EqualFold(word, "new")
	if isNew && strings.TrimSpace(rest) == "" && len(m.Attachments) == 0 {
		b.setFresh(m.ChannelID, true)
		b.replyTo(ctx, m, "🆕 Your next message starts a new image.")
		return
	}
	fresh := b.setFresh(m.ChannelID, false) || isNew
	msg := core.Message{Channel: m.ChannelID, Thread: m.ChannelID, NewSession: fresh, Text: text, Delivery: key}
	if isNew {
		msg.Text = strings.TrimSpace(rest)
	}
	if !b.submit(ctx, b.thread(m.ChannelID, "", ""), m, msg) && fresh {
		b.setFresh(m.ChannelID, true)
	}
}

// setFresh records whether a DM's next prompt starts a new session and
// returns what was recorded before. It is kept in memory only: after a
// restart "new" must be sent again.
func (b *Bot) setFresh(channel string, fresh bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.fresh[channel]
	if fresh {
		b.fresh[channel] = true
	} else {
		delete(b.fresh, channel)
	}
	return was
}

// submit hands a message to the engine: its text (unless msg has one),
// attachments and, for a reply to one of Easel's results, the version
// replied to; msg carries the message's inbox key. Problems are told in a
// reply to the message, and th is let go. It reports whether the engine
// accepted the message.
func (b *Bot) submit(ctx context.Context, th *thread, m *discordgo.Message, msg core.Message) bool {
	msg.Platform, msg.Workspace, msg.Source = Platform, m.GuildID, m.ID
	msg.User = user(m.Author, m.Member, b.cfg.AdminRoles)
	msg.Roles, msg.RolesApply, msg.WorkspaceTerm, msg.DM = roles(m.Member), true, workspaceTerm, m.GuildID == ""
	if msg.Text == "" {
		msg.Text = stripMention(m.Content, b.me())
	}
	inputs, err := b.inputs(ctx, m.Attachments)
	if err == nil {
		msg.Inputs = inputs
		if !msg.NewSession {
			msg.SessionID, msg.Version = b.repliedVersion(ctx, m)
		}
		_, err = b.engine.Handle(ctx, th, msg)
	}
	if errors.Is(err, core.ErrDeliveryTaken) {
		b.release(th)
		b.log.Info("another Easel process handles this message", "message", m.ID)
		return false
	}
	if err != nil {
		b.release(th)
		b.problem(ctx, m, b.userMessage(err, "a Discord message failed"))
		return false
	}
	return true
}

// repliedVersion returns the session and version of the Easel result m
// replies to, read from the result's button ids (from the message Discord
// attached to the reply, or fetched), or "" and 0.
func (b *Bot) repliedVersion(ctx context.Context, m *discordgo.Message) (string, int) {
	ref := m.MessageReference
	if ref == nil || ref.MessageID == "" {
		return "", 0
	}
	replied := m.ReferencedMessage
	if replied == nil {
		channel := ref.ChannelID
		if channel == "" {
			channel = m.ChannelID
		}
		var err error
		if replied, err = b.dg.ChannelMessage(channel, ref.MessageID, discordgo.WithContext(ctx)); err != nil {
			b.log.Debug("reading the message replied to failed", "message", ref.MessageID, "err", err)
			return "", 0
		}
	}
	if replied.Author == nil || replied.Author.ID != b.me() {
		return "", 0
	}
	for _, c := range replied.Components {
		row, ok := c.(*discordgo.ActionsRow)
		if !ok {
			continue
		}
		for _, c := range row.Components {
			if btn, ok := c.(*discordgo.Button); ok {
				if _, session, version, ok := parseButtonID(btn.CustomID); ok {
					return session, version
				}
			}
		}
	}
	return "", 0
}

// replyTo answers message m in its channel, mentioning no one.
func (b *Bot) replyTo(ctx context.Context, m *discordgo.Message, text string) {
	_, err := b.dg.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{
		Content: clip(text), Reference: m.SoftReference(), AllowedMentions: &discordgo.MessageAllowedMentions{},
	}, discordgo.WithContext(ctx))
	if err != nil {
		b.log.Warn("replying to a message failed", "message", m.ID, "err", err)
	}
}

// How long a user is not told again, in a reply, about a kind of problem
// with their messages in a channel, so that repeated messages cannot make
// Easel flood it. A message cannot be answered privately.
const (
	// deniedTTL: that they may not use Easel there.
	deniedTTL = time.Hour
	// problemTTL: what was wrong with a message (a bad flag, a limit).
	// Short, so that someone who fixes one mistake and makes another is
	// soon told again.
	problemTTL = time.Minute
)

// firstNote reports whether m's author is to be told about a kind of
// problem in m's channel: true once per ttl, remembered in the event log so
// that a restart does not forget it.
func (b *Bot) firstNote(ctx context.Context, m *discordgo.Message, kind string, ttl time.Duration) bool {
	first, err := b.events.MarkEvent(ctx, "discord:"+kind+":"+m.ChannelID+":"+m.Author.ID, ttl)
	if err != nil {
		b.log.Warn("recording a note to a user failed; not sending it", "message", m.ID, "err", err)
	}
	return err == nil && first
}

// problem tells m's author what went wrong with m (text), in a reply; in a
// server, their further problems in the channel within problemTTL are
// ignored quietly. (Not even a reaction: Discord allows a channel about
// four a second, which a flood would take from everyone else's.) A direct
// message is always answered: it floods no one else.
func (b *Bot) problem(ctx context.Context, m *discordgo.Message, text string) {
	if m.GuildID == "" || b.firstNote(ctx, m, "problem", problemTTL) {
		b.replyTo(ctx, m, text)
	}
}

// allowed checks that m's author may use Easel in channel (a thread's
// parent channel, or the DM), before anything is downloaded, posted,
// started or recorded. If not, it tells them so and returns false.
//
// A message cannot get an ephemeral answer, so the note is a reply to it
// that pings no one and is sent silently (no push or desktop
// notification); each user is told at most once per channel per deniedTTL,
// and further messages are ignored quietly.
func (b *Bot) allowed(ctx context.Context, m *discordgo.Message, channel string) bool {
	who := user(m.Author, m.Member, b.cfg.AdminRoles)
	err := b.engine.Allowed(core.Message{Platform: Platform, Workspace: m.GuildID, Channel: channel, Category: b.category(ctx, m.GuildID, channel), User: who,
		Action: core.ActionPrompt, Roles: roles(m.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: m.GuildID == "", Source: m.ID})
	if err == nil {
		return true
	}
	b.log.Info("message refused by access rules", "message", m.ID, "user", who.ID, "guild", m.GuildID, "channel", channel)
	if !b.firstNote(ctx, m, "denied", deniedTTL) {
		return false
	}
	_, serr := b.dg.ChannelMessageSendComplex(m.ChannelID, &discordgo.MessageSend{
		Content: clip(b.userMessage(err, "a Discord message was refused")), Reference: m.SoftReference(),
		AllowedMentions: &discordgo.MessageAllowedMentions{}, Flags: discordgo.MessageFlagsSuppressNotifications,
	}, discordgo.WithContext(ctx))
	if serr != nil {
		b.log.Warn("telling a user they may not use Easel here failed", "message", m.ID, "err", serr)
	}
	return false
}

// roles returns a guild member's role ids; none outside a guild.
func roles(m *discordgo.Member) []string {
	if m == nil {
		return nil
	}
	return m.Roles
}
