package discord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/bots/inbox"
	"github.com/easel-bot/easel/core"
)

// onInteraction answers a slash command or button press. A user who may not
// use Easel there gets an ephemeral note as the only response. Otherwise the
// interaction is recorded in the inbox and then acknowledged with a deferred
// response, before anything that could be slow or wait for a busy slot, to
// meet Discord's 3-second deadline; a replayed interaction, recorded before,
// is dropped unanswered, and one that cannot be recorded is answered with
// a note saying so instead.
func (b *Bot) onInteraction(ctx context.Context, ic *discordgo.Interaction) {
	if ic == nil { // a dispatch whose payload was null
		return
	}
	arrived := time.Now()
	switch ic.Type {
	case discordgo.InteractionApplicationCommandAutocomplete:
		b.autocomplete(ctx, ic)
		return
	case discordgo.InteractionApplicationCommand:
		_, imagine := commandData(ic)
		_, describe := describeData(ic)
		_, manage := easelData(ic)
		if !imagine && !describe && !manage || !b.admit(ctx, ic, core.ActionPrompt) {
			return
		}
	case discordgo.InteractionMessageComponent:
		if session, version, ok := componentPress(ic, deleteKind); ok {
			if b.admit(ctx, ic, core.ActionDelete) {
				b.confirmDelete(ctx, ic, session, version)
			}
			return
		}
		action, _, _, ok := buttonPress(ic)
		if !ok {
			_, _, ok = componentPress(ic, cancelKind)
			action = core.ActionCancel
		}
		if !ok {
			_, _, ok = componentPress(ic, confirmKind)
			action = core.ActionDelete
		}
		if !ok {
			_, _, _, ok = regionPick(ic)
			action = core.ActionRegion
		}
		if _, _, _, picked := pickPress(ic); picked {
			ok, action = true, core.ActionPick
		}
		if _, _, _, used := suggestionPress(ic); used {
			ok, action = true, core.ActionPrompt
		}
		if !ok || !b.admit(ctx, ic, action) {
			return
		}
	default:
		return
	}
	key, ok := b.record(ctx, ic)
	if !ok {
		return
	}
	if err := b.ack(ctx, ic); err != nil {
		b.log.Warn("acknowledging an interaction failed", "interaction", ic.ID, "err", err)
	} else {
		b.metrics.Acked(time.Since(arrived))
	}
	r := b.respond(ic)
	b.work(ctx, func() { b.inbox.Handle(ctx, key, b.interactionJob(r)) })
}

// interactionJob returns the work of an interaction, answered through r.
func (b *Bot) interactionJob(r *response) inbox.Job {
	return func(ctx context.Context, key string) bool {
		switch r.ic.Type {
		case discordgo.InteractionApplicationCommand:
			if _, ok := describeData(r.ic); ok {
				b.describe(ctx, key, r)
			} else if _, ok := easelData(r.ic); ok {
				b.manage(ctx, r)
			} else {
				b.imagine(ctx, key, r)
			}
		case discordgo.InteractionMessageComponent:
			if action, session, version, ok := buttonPress(r.ic); ok {
				b.press(ctx, key, r, action, session, version, 0)
			} else if session, turn, ok := componentPress(r.ic, cancelKind); ok {
				b.cancel(ctx, r, session, turn)
			} else if session, version, ok := componentPress(r.ic, confirmKind); ok {
				b.delete(ctx, r, session, version)
			} else if session, version, region, ok := regionPick(r.ic); ok {
				b.chooseRegion(ctx, key, r, session, version, region)
			} else if session, grid, version, ok := pickPress(r.ic); ok {
				b.press(ctx, key, r, core.ActionPick, session, version, grid)
			} else if session, turn, n, ok := suggestionPress(r.ic); ok {
				b.useSuggestion(ctx, key, r, session, turn, n)
			}
		}
		return true
	}
}

// channelLookup bounds the channel lookup made before an interaction is
// answered, well inside Discord's 3 seconds; it is usually served from the
// gateway's state.
const channelLookup = time.Second

// admit checks that an interaction's user may use Easel where it was made,
// before anything is acknowledged, downloaded or posted. If not, the only
// response is an ephemeral note saying why, and admit returns false. A
// thread counts as its parent channel.
func (b *Bot) admit(ctx context.Context, ic *discordgo.Interaction, action core.Action) bool {
	lctx, cancel := context.WithTimeout(ctx, channelLookup)
	msg := b.asker(lctx, ic)
	cancel()
	msg.Action = action
	denied := b.engine.Allowed(msg)
	if denied == nil {
		return true
	}
	err := b.dg.InteractionRespond(ic, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content: clip(b.userMessage(denied, "an interaction was refused")), Flags: discordgo.MessageFlagsEphemeral,
			AllowedMentions: &discordgo.MessageAllowedMentions{},
		},
	}, discordgo.WithContext(ctx))
	var rest *discordgo.RESTError
	switch {
	case errors.As(err, &rest) && rest.Message != nil && rest.Message.Code == discordgo.ErrCodeInteractionHasAlreadyBeenAcknowledged:
		b.log.Debug("interaction answered before", "interaction", ic.ID)
	case err != nil:
		b.log.Warn("telling a user they may not use Easel here failed", "interaction", ic.ID, "err", err)
	}
	b.log.Info("interaction refused by access rules", "interaction", ic.ID, "user", msg.User.ID, "guild", ic.GuildID, "channel", msg.Channel)
	return false
}

// ack sends an interaction's deferred response (see deferral). It returns
// nil also when Discord refuses it as a second answer (a replayed
// interaction that was answered before), and Discord's error otherwise.
func (b *Bot) ack(ctx context.Context, ic *discordgo.Interaction) error {
	err := b.dg.InteractionRespond(ic, deferral(ic), discordgo.WithContext(ctx))
	var rest *discordgo.RESTError
	if errors.As(err, &rest) && rest.Message != nil && rest.Message.Code == discordgo.ErrCodeInteractionHasAlreadyBeenAcknowledged {
		b.log.Debug("interaction answered before", "interaction", ic.ID)
		return nil
	}
	return err
}

// deferral returns the deferred response that acknowledges ic: an update
// of the message for a button or menu, a message only its user sees for
// /easel, a message for the other commands.
func deferral(ic *discordgo.Interaction) *discordgo.InteractionResponse {
	if ic.Type == discordgo.InteractionMessageComponent {
		return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}
	}
	d := &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}
	if _, ok := easelData(ic); ok {
		d.Data = &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral}
	}
	return d
}

// imagine starts a session for /imagine: in a new thread when run in a
// server channel, or right there, as a fresh session, in a DM or a thread.
// Problems the user can fix replace the response with an ephemeral message.
// key is the interaction's inbox key.
func (b *Bot) imagine(ctx context.Context, key string, r *response) {
	ic := r.ic
	data, _ := commandData(ic)
	who := user(ic.User, ic.Member, b.cfg.AdminRoles)
	prompt, text, image := commandText(data)
	msg := core.Message{Platform: Platform, Workspace: ic.GuildID, Channel: ic.ChannelID, Thread: ic.ChannelID, User: who, Text: text,
		Category: b.category(ctx, ic.GuildID, ic.ChannelID),
		Roles:    roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "", Delivery: key}
	if image != nil {
		inputs, err := b.inputs(ctx, []*discordgo.MessageAttachment{image})
		if err != nil {
			b.refuse(ctx, r, err, true)
			return
		}
		msg.Inputs = inputs
	}
	header := fmt.Sprintf("🎨 <@%s>: %s", who.ID, core.Truncate(prompt, 300))
	if ic.GuildID == "" {
		b.imagineHere(ctx, r, msg, "", header)
		return
	}
	ch, err := b.channel(ctx, ic.ChannelID)
	if err != nil {
		b.log.Warn("looking up the command's channel failed; assuming a text channel", "err", err)
	}
	if ch.IsThread() {
		b.imagineHere(ctx, r, msg, ch.ParentID, header)
		return
	}
	b.imagineInNewThread(ctx, r, msg, prompt, header)
}

// imagineHere starts a fresh session in the command's own channel: a DM, or
// a thread of channel parent.
func (b *Bot) imagineHere(ctx context.Context, r *response, msg core.Message, parent, header string) {
	msg.NewSession = true
	if parent != "" {
		msg.Channel = parent
	}
	th := b.thread(r.ic.ChannelID, parent, r.ic.GuildID)
	if _, err := b.engine.Handle(ctx, th, msg); err != nil {
		b.release(th)
		b.refuse(ctx, r, err, true)
		return
	}
	b.editOriginal(ctx, r, header+"\n🆕 a new session starts here")
}

// imagineInNewThread makes the deferred response the session's starter
// message, "🎨 @user: prompt", and starts the session's thread from it once
// the engine accepted the request. The thread takes the message's id, which
// is the session's thread key from the start.
func (b *Bot) imagineInNewThread(ctx context.Context, r *response, msg core.Message, prompt, header string) {
	starter, err := b.editOriginal(ctx, r, header)
	if err != nil {
		b.refuse(ctx, r, core.WrapError(core.Unavailable, err, "Easel could not post here; check that it may send messages in this channel"), false)
		return
	}
	msg.Thread = starter.ID
	th := b.pendingThread(starter.ID, r.ic.ChannelID, r.ic.GuildID)
	if _, err := b.engine.Handle(ctx, th, msg); err != nil {
		th.opened()
		b.release(th)
		b.refuse(ctx, r, err, true)
		return
	}
	if err := b.startThread(ctx, th, starter.ID, prompt); err != nil {
		b.refuse(ctx, r, err, false)
		return
	}
	b.editOriginal(ctx, r, fmt.Sprintf("%s\n🧵 results in <#%s>: reply there to refine", header, th.id))
}

// commandData returns the options of an /imagine command, or false for
// any other interaction. discordgo dispatches an interaction whose data it
// could not decode with no data at all, so the type is checked here rather
// than asserted.
func commandData(ic *discordgo.Interaction) (discordgo.ApplicationCommandInteractionData, bool) {
	data, ok := ic.Data.(discordgo.ApplicationCommandInteractionData)
	return data, ok && ic.Type == discordgo.InteractionApplicationCommand && data.Name == commandName
}

// buttonPress returns the action, session and version of a press of one
// of Easel's buttons, or false for any other interaction, including one
// whose data discordgo could not decode.
func buttonPress(ic *discordgo.Interaction) (action core.Action, session string, version int, ok bool) {
	data, ok := ic.Data.(discordgo.MessageComponentInteractionData)
	if !ok || ic.Type != discordgo.InteractionMessageComponent {
		return "", "", 0, false
	}
	return parseButtonID(data.CustomID)
}

// pickPress returns the session, grid and picked version of a press of a
// pick button under a grid of candidates, or false for any other
// interaction.
func pickPress(ic *discordgo.Interaction) (session string, grid, version int, ok bool) {
	data, ok := ic.Data.(discordgo.MessageComponentInteractionData)
	if !ok || ic.Type != discordgo.InteractionMessageComponent {
		return "", 0, 0, false
	}
	return parsePickID(data.CustomID)
}

// componentPress returns the session and turn or version a press of an
// Easel button of kind names (see kindID), or false for any other
// interaction.
func componentPress(ic *discordgo.Interaction, kind string) (session string, n int, ok bool) {
	data, ok := ic.Data.(discordgo.MessageComponentInteractionData)
	if !ok || ic.Type != discordgo.InteractionMessageComponent {
		return "", 0, false
	}
	return parseKindID(kind, data.CustomID)
}

// regionPick returns the session, version and chosen value of a choice
// from a result's "Edit region" menu, or false for any other interaction.
// A choice of anything but exactly one value has region "", which the
// engine refuses.
func regionPick(ic *discordgo.Interaction) (session string, version int, region string, ok bool) {
	data, ok := ic.Data.(discordgo.MessageComponentInteractionData)
	if !ok || ic.Type != discordgo.InteractionMessageComponent || data.ComponentType != discordgo.SelectMenuComponent {
		return "", 0, "", false
	}
	session, version, ok = parseRegionMenuID(data.CustomID)
	if len(data.Values) == 1 {
		region = data.Values[0]
	}
	return session, version, region, ok
}

// commandText turns /imagine's options into the prompt and the message
// text the engine parses (the prompt with flags appended, each option's
// value quoted as one flag's; see flag), and returns the attached image,
// if any.
func commandText(data discordgo.ApplicationCommandInteractionData) (prompt, text string, image *discordgo.MessageAttachment) {
	var flags []string
	for _, o := range data.Options {
		if o == nil { // "options": [null]
			continue
		}
		v := fmt.Sprint(o.Value)
		switch o.Name {
		case "prompt":
			prompt = strings.TrimSpace(v)
		case optAspect:
			flags = append(flags, flag("ar", v))
		case optQuality, optModel, optStyle, "n":
			flags = append(flags, flag(o.Name, v))
		case "image":
			if data.Resolved != nil {
				image = data.Resolved.Attachments[v]
			}
		}
	}
	return prompt, strings.Join(append([]string{prompt}, flags...), " "), image
}

// startThread starts the thread of a pending session from its starter
// message and lets the session's calls through.
func (b *Bot) startThread(ctx context.Context, th *thread, message, prompt string) error {
	defer th.opened()
	ch, err := b.dg.MessageThreadStartComplex(th.parent, message,
		&discordgo.ThreadStart{Name: threadName(prompt), AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err != nil {
		b.log.Error("starting a session thread failed", "channel", th.parent, "message", message, "err", err)
		return core.WrapError(core.Unavailable, err, "Easel could not start a thread here; it needs the Create Public Threads and Send Messages in Threads permissions")
	}
	if ch.ID != message {
		b.log.Error("Discord gave a message's thread another id; the session will not find it", "message", message, "thread", ch.ID)
	}
	return nil
}

// editOriginal sets the content of the command's response message.
func (b *Bot) editOriginal(ctx context.Context, r *response, content string) (*discordgo.Message, error) {
	m, err := r.edit(ctx, content)
	if err != nil {
		b.log.Error("editing the command's response failed", "interaction", r.ic.ID, "err", err)
	}
	return m, err
}

// refuse tells the user why their command or press did nothing, in an
// ephemeral follow-up; withdraw also deletes the deferred response.
func (b *Bot) refuse(ctx context.Context, r *response, err error, withdraw bool) {
	if errors.Is(err, core.ErrDeliveryTaken) {
		b.log.Info("another Easel process handles this interaction", "interaction", r.ic.ID)
		return // whoever holds it answers, through the same token
	}
	text := b.userMessage(err, "a Discord interaction failed")
	if withdraw {
		if err := r.withdraw(ctx); err != nil {
			b.log.Warn("withdrawing the command's response failed", "interaction", r.ic.ID, "err", err)
		}
	}
	if err := r.tell(ctx, text); err != nil {
		b.log.Warn("telling the user failed", "interaction", r.ic.ID, "err", err)
	}
}

// press runs a result's button. The engine refuses presses by anyone but
// the requester or an admin; they get an ephemeral note. key is the
// press's inbox key; grid names the grid of a pick button (see
// core.Message.Grid), 0 for the other buttons.
func (b *Bot) press(ctx context.Context, key string, r *response, action core.Action, session string, version, grid int) {
	ic := r.ic
	parent := ""
	if ic.GuildID != "" {
		if ch, err := b.channel(ctx, ic.ChannelID); err == nil {
			parent = ch.ParentID
		}
	}
	th := b.thread(ic.ChannelID, parent, ic.GuildID)
	channel := ic.ChannelID
	if parent != "" {
		channel = parent // a thread counts as its parent channel
	}
	_, err := b.engine.Handle(ctx, th, core.Message{
		Platform: Platform, Workspace: ic.GuildID, Channel: channel, Category: b.category(ctx, ic.GuildID, channel), Thread: ic.ChannelID,
		User: user(ic.User, ic.Member, b.cfg.AdminRoles), Action: action, SessionID: session, Version: version,
		Roles: roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "", Delivery: key,
		Grid: grid,
	})
	if err != nil {
		b.release(th)
		b.refuse(ctx, r, err, false)
	}
}

// chooseRegion records a choice from a result's "Edit region" menu for the
// chooser's next reply in the thread; the engine says it in the thread.
// key is the choice's inbox key.
// The engine refuses choices by anyone but the requester or an admin, and
// values that are no choice of the menu; the chooser gets an ephemeral
// note.
func (b *Bot) chooseRegion(ctx context.Context, key string, r *response, session string, version int, region string) {
	ic := r.ic
	parent := ""
	if ic.GuildID != "" {
		if ch, err := b.channel(ctx, ic.ChannelID); err == nil {
			parent = ch.ParentID
		}
	}
	th := b.thread(ic.ChannelID, parent, ic.GuildID)
	channel := ic.ChannelID
	if parent != "" {
		channel = parent
	}
	err := b.engine.ChooseRegion(ctx, th, core.Message{
		Platform: Platform, Workspace: ic.GuildID, Channel: channel, Category: b.category(ctx, ic.GuildID, channel), Thread: ic.ChannelID,
		User: user(ic.User, ic.Member, b.cfg.AdminRoles), SessionID: session, Version: version,
		Roles: roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "", Delivery: key,
	}, region)
	b.release(th)
	if err != nil {
		b.refuse(ctx, r, err, false)
	}
}

// cancel cancels a turn from its status message's Cancel button; the
// engine says it in the thread. It refuses presses by anyone but the
// requester or an admin, and presses for a turn that has ended; the
// presser gets an ephemeral note.
func (b *Bot) cancel(ctx context.Context, r *response, session string, turn int) {
	th, msg := b.pressOn(ctx, r.ic, session)
	if err := b.engine.Cancel(ctx, th, msg, turn); err != nil {
		b.refuse(ctx, r, err, false)
	}
}

// pressOn returns the thread of a press of a button of session, and the
// message that names the presser to the engine.
func (b *Bot) pressOn(ctx context.Context, ic *discordgo.Interaction, session string) (*thread, core.Message) {
	parent := ""
	if ic.GuildID != "" {
		if ch, err := b.channel(ctx, ic.ChannelID); err == nil {
			parent = ch.ParentID
		}
	}
	channel := ic.ChannelID
	if parent != "" {
		channel = parent
	}
	return b.thread(ic.ChannelID, parent, ic.GuildID), core.Message{
		Platform: Platform, Workspace: ic.GuildID, Channel: channel, Category: b.category(ctx, ic.GuildID, channel), Thread: ic.ChannelID,
		User: user(ic.User, ic.Member, b.cfg.AdminRoles), SessionID: session,
		Roles: roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "",
	}
}

// confirmDelete answers a press of a result's Delete button with an
// ephemeral question whose button confirms it; nothing is deleted yet, so
// nothing is recorded. The engine checks who may delete when the deletion
// is confirmed.
func (b *Bot) confirmDelete(ctx context.Context, ic *discordgo.Interaction, session string, version int) {
	confirm := discordgo.Button{Label: fmt.Sprintf("Delete v%d", version), Style: discordgo.DangerButton,
		CustomID: kindID(confirmKind, session, version)}
	err := b.dg.InteractionRespond(ic, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content: fmt.Sprintf("Delete v%d? It leaves this thread and can no longer be refined, regenerated or exported. "+
				"Dismiss this message to keep it.", version),
			Flags:           discordgo.MessageFlagsEphemeral,
			Components:      []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{confirm}}},
			AllowedMentions: &discordgo.MessageAllowedMentions{},
		},
	}, discordgo.WithContext(ctx))
	if err != nil {
		b.log.Warn("asking to confirm a deletion failed", "interaction", ic.ID, "err", err)
	}
}

// delete deletes a version once its deletion is confirmed; the engine
// takes its post down and says it in the thread. Others than the requester
// or an admin, and a version deleted already, get an ephemeral note.
func (b *Bot) delete(ctx context.Context, r *response, session string, version int) {
	th, msg := b.pressOn(ctx, r.ic, session)
	msg.Version = version
	if err := b.engine.Delete(ctx, th, msg); err != nil {
		b.refuse(ctx, r, err, false)
	}
}
