package discord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// Discord shows "Easel is typing…" for about ten seconds per call.
const (
	typingEvery = 8 * time.Second
	maxTyping   = 15 * time.Minute
)

// thread is the Discord channel of one session, a thread in a server or a
// DM channel, as the engine's core.Thread. While a turn is queued or
// rendering it shows one status message, edited as the job moves and
// replaced by partial previews, and the typing indicator; both go when the
// status is cleared. Status messages are sent silently (no notification),
// which also tells them apart after a restart. Everything is posted with the
// bot token.
type thread struct {
	bot    *Bot
	id     string        // the thread's or DM's channel id
	parent string        // a thread's parent channel; "" in DMs
	guild  string        // "" in DMs
	ready  chan struct{} // closed once the Discord thread exists
	// name, set on a resumed session's thread, is the name to start the
	// thread with if it turns out never to have been started: the process
	// that recorded the session's first turn stopped before starting it.
	name     atomic.Pointer[string]
	verified sync.Once

	mu       sync.Mutex // serialises status updates and guards the fields below
	statusID string
	stop     context.CancelFunc // stops the typing indicator
	// stale says an earlier process may have left a status message here,
	// to be found and reused before the next status update.
	stale bool
}

var (
	_ core.Thread      = (*thread)(nil)
	_ core.Previewer   = (*thread)(nil)
	_ core.Finisher    = (*thread)(nil)
	_ core.Resender    = (*thread)(nil)
	_ core.CancelOffer = (*thread)(nil)
	_ core.Remover     = (*thread)(nil)
)

var _ core.UploadLimiter = (*thread)(nil)

// Thread returns the core.Thread of a stored Discord session, for
// core.Engine.Resume after a restart; it returns false for sessions of other
// platforms. It needs no gateway connection, and it takes over the status
// message an interrupted turn left in the thread.
func (b *Bot) Thread(sess *core.Session) (core.Thread, bool) {
	if sess.Platform != Platform {
		return nil, false
	}
	parent := sess.Channel
	if parent == sess.Thread { // a DM: the channel is the session
		parent = ""
	}
	t := b.thread(sess.Thread, parent, sess.Workspace)
	t.mu.Lock()
	t.stale = t.statusID == ""
	t.mu.Unlock()
	if parent != "" && len(sess.Turns) > 0 {
		name := threadName(sess.Turns[0].Prompt)
		t.name.CompareAndSwap(nil, &name)
	}
	return t, true
}

// maxThreads bounds the threads the bot keeps; beyond it, those that show
// nothing are forgotten. Until then a thread is kept once made, so that
// every request of a session shares one status message.
const maxThreads = 10000

// thread returns the thread of channel id, sharing it with any turn already
// using it, so a session has one status message.
func (b *Bot) thread(id, parent, guild string) *thread {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.threads[id]; t != nil {
		return t
	}
	if len(b.threads) >= maxThreads {
		b.forgetIdle()
	}
	t := &thread{bot: b, id: id, parent: parent, guild: guild, ready: make(chan struct{})}
	close(t.ready)
	b.threads[id] = t
	return t
}

// pendingThread returns the thread that is about to be started from message
// id in channel parent (Discord gives it the message's id). Its methods wait
// until opened is called.
func (b *Bot) pendingThread(id, parent, guild string) *thread {
	t := &thread{bot: b, id: id, parent: parent, guild: guild, ready: make(chan struct{})}
	b.mu.Lock()
	b.threads[id] = t
	b.mu.Unlock()
	return t
}

// forgetIdle forgets the threads that show nothing, are not changing
// what they show right now, and are not waiting to be started; b.mu must
// be held.
func (b *Bot) forgetIdle() {
	for id, t := range b.threads {
		select {
		case <-t.ready:
		default:
			continue
		}
		if !t.mu.TryLock() {
			continue
		}
		idle := t.statusID == "" && t.stop == nil
		t.mu.Unlock()
		if idle {
			delete(b.threads, id)
		}
	}
}

// opened lets a pending thread's calls through, once Discord created the
// thread or failed to.
func (t *thread) opened() { close(t.ready) }

// release forgets t, a thread made for a request that was refused, once
// it shows nothing.
func (b *Bot) release(t *thread) {
	t.mu.Lock()
	idle := t.statusID == "" && t.stop == nil
	t.mu.Unlock()
	if !idle {
		return
	}
	b.mu.Lock()
	if b.threads[t.id] == t {
		delete(b.threads, t.id)
	}
	b.mu.Unlock()
}

// wait returns once the Discord thread exists, or ctx's error.
func (t *thread) wait(ctx context.Context) error {
	select {
	case <-t.ready:
	case <-ctx.Done():
		return fmt.Errorf("discord: thread %s is not created yet: %w", t.id, ctx.Err())
	}
	if name := t.name.Load(); name != nil {
		t.verified.Do(func() { t.start(ctx, *name) })
	}
	return nil
}

// start starts a resumed session's thread from its starter message if the
// thread does not exist.
func (t *thread) start(ctx context.Context, name string) {
	_, err := t.bot.dg.Channel(t.id, discordgo.WithContext(ctx))
	var rest *discordgo.RESTError
	if !errors.As(err, &rest) || rest.Message == nil || rest.Message.Code != discordgo.ErrCodeUnknownChannel {
		return // there, or not known to be missing
	}
	_, err = t.bot.dg.MessageThreadStartComplex(t.parent, t.id,
		&discordgo.ThreadStart{Name: name, AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err != nil {
		t.bot.log.Error("starting the thread of a resumed session failed", "channel", t.parent, "message", t.id, "err", err)
		return
	}
	t.bot.log.Info("started the thread of a session an earlier process recorded", "channel", t.parent, "thread", t.id)
}

// send posts a message in the thread, mentioning no one.
func (t *thread) send(ctx context.Context, m *discordgo.MessageSend) (*discordgo.Message, error) {
	if err := t.wait(ctx); err != nil {
		return nil, err
	}
	m.AllowedMentions = &discordgo.MessageAllowedMentions{}
	msg, err := t.bot.dg.ChannelMessageSendComplex(t.id, m, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("discord: post in %s: %w", t.id, err)
	}
	return msg, nil
}

// Reply posts text in the thread.
func (t *thread) Reply(ctx context.Context, text string) error {
	_, err := t.send(ctx, &discordgo.MessageSend{Content: clip(text)})
	return err
}

// PostImage posts a result: the image file, its caption and its buttons;
// or a grid of candidates, made to fit the upload limit, with its pick
// buttons. An image over the channel's upload limit is not sent; the
// caption says so and keeps the buttons.
//
// With p.Retry (an earlier process may have posted it before it stopped),
// it first looks for the result among the thread's recent messages: a
// result is one message, so it is either there, whole, or missing.
func (t *thread) PostImage(ctx context.Context, p core.ImagePost) error {
	name := fmt.Sprintf("easel-v%d%s", p.Version, p.Image.Ext())
	id := buttonID(core.ActionRegenerate, p.SessionID, p.Version)
	if len(p.Candidates) > 0 {
		name = fmt.Sprintf("easel-v%d-grid%s", p.Version, p.Image.Ext())
		id = pickID(p.SessionID, p.Version, p.Candidates[0])
	}
	if p.Retry {
		found, err := t.find(ctx, p.Since, func(m *discordgo.Message) bool { return hasButton(m, id) })
		if err != nil {
			t.bot.log.Warn("looking for an earlier post failed; posting it", "channel", t.id, "err", err)
		}
		if found {
			return nil
		}
	}
	m := &discordgo.MessageSend{Content: clip(p.Caption), Components: buttons(p)}
	if n, limit := int64(len(p.Image.Data)), t.bot.uploadLimit(t.guild); n > limit {
		m.Content = clip(fmt.Sprintf("%s\n⚠️ v%d is %s, over the %s this channel accepts from bots, so it cannot be shown here. "+
			"Try again with `--format jpeg` or a smaller `--size`.", p.Caption, p.Version, size(n), size(limit)))
	} else {
		m.Files = []*discordgo.File{{Name: name, ContentType: p.Image.MIME, Reader: bytes.NewReader(p.Image.Data)}}
	}
	_, err := t.send(ctx, m)
	return err
}

// UploadLimit returns the most bytes the bot may upload in the thread.
func (t *thread) UploadLimit() int64 { return t.bot.uploadLimit(t.guild) }

// RemoveImage deletes the result message of version n of session id, found
// among the thread's 100 most recent messages by its buttons.
func (t *thread) RemoveImage(ctx context.Context, id string, n int) error {
	if err := t.wait(ctx); err != nil {
		return err
	}
	msgs, err := t.bot.dg.ChannelMessages(t.id, 100, "", "", "", discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: list messages in %s: %w", t.id, err)
	}
	want := buttonID(core.ActionRegenerate, id, n)
	for _, m := range msgs {
		if !hasButton(m, want) {
			continue
		}
		if err := t.bot.dg.ChannelMessageDelete(t.id, m.ID, discordgo.WithContext(ctx)); err != nil && !isUnknownMessage(err) {
			return fmt.Errorf("discord: delete v%d's post in %s: %w", n, t.id, err)
		}
	}
	return nil
}

// Posted reports whether the bot posted text in the thread since the given
// time, among its 100 most recent messages.
func (t *thread) Posted(ctx context.Context, text string, since time.Time) (bool, error) {
	want := clip(text)
	return t.find(ctx, since, func(m *discordgo.Message) bool { return m.Content == want })
}

// find reports whether one of the bot's messages in the thread since the
// given time, among the 100 most recent, satisfies match.
func (t *thread) find(ctx context.Context, since time.Time, match func(*discordgo.Message) bool) (bool, error) {
	if err := t.wait(ctx); err != nil {
		return false, err
	}
	me, err := t.bot.self(ctx)
	if err != nil {
		return false, err
	}
	msgs, err := t.bot.dg.ChannelMessages(t.id, 100, "", "", "", discordgo.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("discord: list messages in %s: %w", t.id, err)
	}
	for _, m := range msgs { // newest first
		if m.Timestamp.Before(since) {
			break
		}
		if m.Author != nil && m.Author.ID == me && match(m) {
			return true, nil
		}
	}
	return false, nil
}

// onlyCancel reports whether m carries no component but a status
// message's Cancel button.
func onlyCancel(m *discordgo.Message) bool {
	for _, row := range m.Components {
		r, ok := row.(*discordgo.ActionsRow)
		if !ok {
			return false
		}
		for _, c := range r.Components {
			b, ok := c.(*discordgo.Button)
			if !ok {
				return false
			}
			if _, _, ok := parseKindID(cancelKind, b.CustomID); !ok {
				return false
			}
		}
	}
	return true
}

// hasButton reports whether m carries a button whose custom id is id.
func hasButton(m *discordgo.Message, id string) bool {
	for _, row := range m.Components {
		r, ok := row.(*discordgo.ActionsRow)
		if !ok {
			continue
		}
		for _, c := range r.Components {
			if b, ok := c.(*discordgo.Button); ok && b.CustomID == id {
				return true
			}
		}
	}
	return false
}

// SetStatus shows status in the thread's status message, posting it if
// needed, and keeps the typing indicator on; "" deletes the message and
// stops typing.
func (t *thread) SetStatus(ctx context.Context, status string) error {
	return t.setStatus(ctx, status, nil)
}

// SetTurnStatus shows status as SetStatus does, with its Cancel buttons
// in one row.
func (t *thread) SetTurnStatus(ctx context.Context, status string, buttons []core.CancelButton) error {
	var row []discordgo.MessageComponent
	for _, b := range buttons {
		row = append(row, discordgo.Button{Label: b.Label, Style: discordgo.DangerButton,
			CustomID: kindID(cancelKind, b.Turn.SessionID, b.Turn.TurnID), Emoji: &discordgo.ComponentEmoji{Name: "🛑"}})
	}
	return t.setStatus(ctx, status, []discordgo.MessageComponent{discordgo.ActionsRow{Components: row}})
}

// setStatus shows status with components (none for nil), or deletes the
// status message for "".
func (t *thread) setStatus(ctx context.Context, status string, components []discordgo.MessageComponent) error {
	if status == "" {
		return t.clearStatus(ctx)
	}
	if err := t.wait(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.adopt(ctx)
	t.startTyping()
	text := clip(status)
	if components == nil {
		components = []discordgo.MessageComponent{}
	}
	return t.showStatus(ctx, &discordgo.MessageEdit{Content: &text, Components: &components},
		&discordgo.MessageSend{Content: text, Components: components})
}

// showStatus applies edit to the status message, or posts m as the status
// message when there is none (or someone deleted it); t.mu must be held.
func (t *thread) showStatus(ctx context.Context, edit *discordgo.MessageEdit, m *discordgo.MessageSend) error {
	if t.statusID != "" {
		edit.Channel, edit.ID = t.id, t.statusID
		_, err := t.bot.dg.ChannelMessageEditComplex(edit, discordgo.WithContext(ctx))
		switch {
		case err == nil:
			return nil
		case !isUnknownMessage(err):
			return fmt.Errorf("discord: update status in %s: %w", t.id, err)
		}
	}
	m.Flags |= discordgo.MessageFlagsSuppressNotifications
	sent, err := t.send(ctx, m)
	if err != nil {
		return err
	}
	t.statusID = sent.ID
	return nil
}

// isUnknownMessage reports whether err is Discord's "Unknown Message".
func isUnknownMessage(err error) bool {
	var rest *discordgo.RESTError
	return errors.As(err, &rest) && rest.Message != nil && rest.Message.Code == discordgo.ErrCodeUnknownMessage
}

// clearStatus deletes the status message and stops typing.
func (t *thread) clearStatus(ctx context.Context) error {
	t.mu.Lock()
	t.adopt(ctx)
	t.stopTyping()
	id := t.statusID
	t.statusID = ""
	t.mu.Unlock()
	// t stays the thread's: a request being handled may hold it, and show
	// its "queued" line next; forgotten now, that line would be on a thread
	// value nobody clears. Idle threads are forgotten past maxThreads.
	if id == "" {
		return nil
	}
	if err := t.bot.dg.ChannelMessageDelete(t.id, id, discordgo.WithContext(ctx)); err != nil && !isUnknownMessage(err) {
		return fmt.Errorf("discord: delete status in %s: %w", t.id, err)
	}
	return nil
}

// Preview replaces the status message's attachment with a partial image.
// Previews over the upload limit are skipped.
func (t *thread) Preview(ctx context.Context, img core.Image) error {
	if int64(len(img.Data)) > t.bot.uploadLimit(t.guild) {
		return nil
	}
	if err := t.wait(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.adopt(ctx)
	t.startTyping()
	name := "preview" + img.Ext()
	file := func() []*discordgo.File {
		return []*discordgo.File{{Name: name, ContentType: img.MIME, Reader: bytes.NewReader(img.Data)}}
	}
	// The edit's attachments are what the message keeps: only the new
	// file, by its files[0] placeholder.
	keep := []*discordgo.MessageAttachment{{ID: "0", Filename: name}}
	return t.showStatus(ctx, &discordgo.MessageEdit{Files: file(), Attachments: &keep},
		&discordgo.MessageSend{Content: "🎨 rendering…", Files: file()})
}

// Finish reacts ✅ or ❌ on the message that asked for the turn. A thread
// started from that message has its id, and the message lives in the
// parent channel.
func (t *thread) Finish(ctx context.Context, source string, ok bool) error {
	t.mu.Lock()
	t.stopTyping()
	t.mu.Unlock()
	if source == "" {
		return nil
	}
	channel := t.id
	if source == t.id && t.parent != "" {
		channel = t.parent
	}
	emoji := "✅"
	if !ok {
		emoji = "❌"
	}
	if err := t.bot.dg.MessageReactionAdd(channel, source, emoji, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("discord: react to %s: %w", source, err)
	}
	return nil
}

// adopt, once after a restart, takes over the status message an earlier
// process left among the thread's recent messages, and deletes any older
// ones; t.mu must be held.
func (t *thread) adopt(ctx context.Context) {
	if !t.stale {
		return
	}
	t.stale = false
	me, err := t.bot.self(ctx)
	if err != nil {
		t.bot.log.Warn("finding an earlier status message failed", "channel", t.id, "err", err)
		return
	}
	msgs, err := t.bot.dg.ChannelMessages(t.id, 50, "", "", "", discordgo.WithContext(ctx))
	if err != nil {
		t.bot.log.Warn("finding an earlier status message failed", "channel", t.id, "err", err)
		return
	}
	for _, m := range msgs { // newest first
		if m.Author == nil || m.Author.ID != me || m.Flags&discordgo.MessageFlagsSuppressNotifications == 0 ||
			!onlyCancel(m) || m.MessageReference != nil { // status messages are never replies
			continue
		}
		if t.statusID == "" {
			t.statusID = m.ID
		} else if err := t.bot.dg.ChannelMessageDelete(t.id, m.ID, discordgo.WithContext(ctx)); err != nil {
			t.bot.log.Warn("deleting an old status message failed", "channel", t.id, "err", err)
		}
	}
}

// startTyping keeps the typing indicator on until stopTyping; t.mu must be held.
func (t *thread) startTyping() {
	if t.stop != nil {
		return
	}
	ctx, cancel := context.WithTimeout(t.bot.life, maxTyping)
	t.stop = cancel
	go func() {
		tick := time.NewTicker(typingEvery)
		defer tick.Stop()
		for {
			if err := t.bot.dg.ChannelTyping(t.id, discordgo.WithContext(ctx)); err != nil && ctx.Err() == nil {
				t.bot.log.Debug("typing indicator failed", "channel", t.id, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// stopTyping ends the typing indicator; t.mu must be held.
func (t *thread) stopTyping() {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

// maxLinkURL is the longest URL Discord takes in a link button.
const maxLinkURL = 512

// buttons returns the action rows of a result: one button per action and a
// Delete button (which asks for confirmation first), whose custom ids name
// the session and version, the session's gallery link, if any, and the
// "Edit region" menu. Under a grid of candidates, the pick buttons.
func buttons(p core.ImagePost) []discordgo.MessageComponent {
	if len(p.Candidates) > 0 {
		return pickButtons(p)
	}
	var all []discordgo.Button
	for _, b := range p.Buttons {
		btn := discordgo.Button{Label: b.Label, Style: discordgo.SecondaryButton, CustomID: buttonID(b.Action, p.SessionID, p.Version)}
		if e := buttonEmoji[b.Action]; e != "" {
			btn.Emoji = &discordgo.ComponentEmoji{Name: e}
		}
		all = append(all, btn)
	}
	if len(p.Buttons) > 0 {
		all = append(all, discordgo.Button{Label: "Delete", Style: discordgo.DangerButton,
			CustomID: kindID(deleteKind, p.SessionID, p.Version), Emoji: &discordgo.ComponentEmoji{Name: "🗑️"}})
	}
	var rows []discordgo.MessageComponent
	var row discordgo.ActionsRow
	for i, btn := range all {
		row.Components = append(row.Components, btn)
		if len(row.Components) == 5 || i == len(all)-1 {
			rows = append(rows, row)
			row = discordgo.ActionsRow{}
		}
	}
	if p.Link != "" && len(p.Link) <= maxLinkURL {
		// A link button opens the page and sends Easel nothing.
		link := discordgo.Button{Label: "Open in gallery", Style: discordgo.LinkButton, URL: p.Link, Emoji: &discordgo.ComponentEmoji{Name: "🖼️"}}
		rows = append(rows, discordgo.ActionsRow{Components: []discordgo.MessageComponent{link}})
	}
	if len(p.Buttons) > 0 {
		// The "Edit region" menu, a string select, in a row of its own.
		menu := discordgo.SelectMenu{MenuType: discordgo.StringSelectMenu, CustomID: regionMenuID(p.SessionID, p.Version),
			Placeholder: "✂️ Edit region"}
		for _, o := range core.RegionOptions() {
			menu.Options = append(menu.Options, discordgo.SelectMenuOption{Label: o.Label, Value: o.Value})
		}
		rows = append(rows, discordgo.ActionsRow{Components: []discordgo.MessageComponent{menu}})
	}
	return rows
}

// pickButtons returns the action row under a grid of candidates: a pick
// button per cell, whose custom id names the session, the grid and the
// candidate.
func pickButtons(p core.ImagePost) []discordgo.MessageComponent {
	var row discordgo.ActionsRow
	for i, b := range p.Buttons {
		row.Components = append(row.Components, discordgo.Button{Label: b.Label, Style: discordgo.PrimaryButton,
			CustomID: pickID(p.SessionID, p.Version, p.Candidates[i])})
	}
	return []discordgo.MessageComponent{row}
}

var buttonEmoji = map[core.Action]string{
	core.ActionRegenerate:  "🔄",
	core.ActionVariations:  "🎲",
	core.ActionUndo:        "↩️",
	core.ActionHighQuality: "✨",
}
