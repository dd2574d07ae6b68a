package discord

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// describeName is the slash command that suggests prompts for an image.
const describeName = "describe"

// describeCommand returns /describe with its one option, the image.
// global commands also work in DMs with the bot.
func describeCommand(global bool) *discordgo.ApplicationCommand {
	cmd := &discordgo.ApplicationCommand{
		Name:        describeName,
		Type:        discordgo.ChatApplicationCommand,
		Description: "Suggest prompts for an image; press one to start a session with it",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: discordgo.ApplicationCommandOptionAttachment, Name: "image", Required: true, Description: "The image to describe"},
		},
	}
	if global {
		cmd.Contexts = &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	}
	return cmd
}

// describeData returns the options of a /describe command, or false for
// any other interaction.
func describeData(ic *discordgo.Interaction) (discordgo.ApplicationCommandInteractionData, bool) {
	data, ok := ic.Data.(discordgo.ApplicationCommandInteractionData)
	return data, ok && ic.Type == discordgo.InteractionApplicationCommand && data.Name == describeName
}

// describe answers /describe: the response lists the prompts suggested
// for the attached image, with a button per suggestion. The describe is
// recorded in the session of the channel when it is a thread or a DM,
// and otherwise under the response message, as a session with no thread
// yet. Problems the user can fix replace the response with an ephemeral
// message. key is the interaction's inbox key.
func (b *Bot) describe(ctx context.Context, key string, r *response) {
	ic := r.ic
	data, _ := describeData(ic)
	var image *discordgo.MessageAttachment
	for _, o := range data.Options {
		if o != nil && o.Name == "image" && data.Resolved != nil {
			image = data.Resolved.Attachments[fmt.Sprint(o.Value)]
		}
	}
	inputs, err := b.inputs(ctx, []*discordgo.MessageAttachment{image})
	if err != nil {
		b.refuse(ctx, r, err, true)
		return
	}
	msg := core.Message{Platform: Platform, Workspace: ic.GuildID, Channel: ic.ChannelID, Thread: ic.ChannelID,
		Category: b.category(ctx, ic.GuildID, ic.ChannelID), User: user(ic.User, ic.Member, b.cfg.AdminRoles), Inputs: inputs,
		Roles: roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "", Delivery: key}
	if ic.GuildID != "" {
		ch, err := b.channel(ctx, ic.ChannelID)
		switch {
		case err != nil:
			b.log.Warn("looking up the command's channel failed; assuming a text channel", "err", err)
			fallthrough
		case !ch.IsThread():
			starter, err := b.editOriginal(ctx, r, "💡 looking at the image…")
			if err != nil {
				b.refuse(ctx, r, core.WrapError(core.Unavailable, err, "Easel could not post here; check that it may send messages in this channel"), false)
				return
			}
			msg.Thread = starter.ID
		default:
			msg.Channel = ch.ParentID
		}
	}
	d, err := b.engine.Describe(ctx, msg)
	if err != nil {
		b.refuse(ctx, r, err, true)
		return
	}
	content := describedText(msg.User.ID, inputs[0].Name, d.Suggestions)
	if _, err := b.dg.InteractionResponseEdit(ic, &discordgo.WebhookEdit{Content: &content,
		Components: suggestionButtons(d), AllowedMentions: &discordgo.MessageAllowedMentions{}}, discordgo.WithContext(ctx)); err != nil {
		b.log.Error("posting prompt suggestions failed", "interaction", ic.ID, "err", err)
	}
}

// describedText lists suggestions, numbered, for the user who asked.
func describedText(who, name string, suggestions []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "💡 <@%s>: prompts for %s", who, core.Truncate(name, 100))
	for i, s := range suggestions {
		fmt.Fprintf(&b, "\n%d. %s", i+1, core.Truncate(s, 400))
	}
	b.WriteString("\nPress a number to start a new session with that prompt.")
	return clip(b.String())
}

// suggestionButtons returns one button per suggestion of d, labelled with
// its number.
func suggestionButtons(d core.Described) *[]discordgo.MessageComponent {
	var row discordgo.ActionsRow
	for i := range d.Suggestions {
		row.Components = append(row.Components, discordgo.Button{Label: strconv.Itoa(i + 1), Style: discordgo.PrimaryButton,
			CustomID: suggestionID(d.SessionID, d.TurnID, i+1)})
	}
	return &[]discordgo.MessageComponent{row}
}

// suggestionID returns the custom id of suggestion n's button of describe
// turn turn, "easel:describe:<session>:<turn>:<n>".
func suggestionID(session string, turn, n int) string {
	return buttonPrefix + ":" + string(core.ActionDescribe) + ":" + session + ":" + strconv.Itoa(turn) + ":" + strconv.Itoa(n)
}

// suggestionPress returns the session, describe turn and suggestion
// number of a press of a suggestion button, or false for any other
// interaction.
func suggestionPress(ic *discordgo.Interaction) (session string, turn, n int, ok bool) {
	data, ok := ic.Data.(discordgo.MessageComponentInteractionData)
	if !ok || ic.Type != discordgo.InteractionMessageComponent {
		return "", 0, 0, false
	}
	parts := strings.Split(data.CustomID, ":")
	if len(parts) != 5 || parts[0] != buttonPrefix || parts[1] != string(core.ActionDescribe) || parts[2] == "" {
		return "", 0, 0, false
	}
	turn, err := strconv.Atoi(parts[3])
	n, err2 := strconv.Atoi(parts[4])
	if err != nil || err2 != nil || turn < 1 || n < 1 || strconv.Itoa(turn) != parts[3] || strconv.Itoa(n) != parts[4] {
		return "", 0, 0, false
	}
	return parts[2], turn, n, true
}

// useSuggestion starts a new session with suggestion n of a describe: in
// a new thread from a starter message when pressed in a server channel,
// or right there, as a fresh session, in a DM or a thread. Only who asked
// for the describe, or an admin, may; others get an ephemeral note. key is
// the press's inbox key.
func (b *Bot) useSuggestion(ctx context.Context, key string, r *response, session string, turn, n int) {
	ic := r.ic
	who := user(ic.User, ic.Member, b.cfg.AdminRoles)
	prompt, err := b.engine.Suggestion(ctx, session, turn, n, who)
	if err != nil {
		b.refuse(ctx, r, err, false)
		return
	}
	msg := core.Message{Platform: Platform, Workspace: ic.GuildID, Channel: ic.ChannelID, Thread: ic.ChannelID, User: who, Text: prompt,
		Category: b.category(ctx, ic.GuildID, ic.ChannelID), Roles: roles(ic.Member), RolesApply: true, WorkspaceTerm: workspaceTerm, DM: ic.GuildID == "", Delivery: key}
	header := fmt.Sprintf("🎨 <@%s>: %s", who.ID, core.Truncate(prompt, 300))
	parent := ""
	if ic.GuildID != "" {
		ch, err := b.channel(ctx, ic.ChannelID)
		if err != nil {
			b.log.Warn("looking up the press's channel failed; assuming a text channel", "err", err)
		}
		parent = ch.ParentID
		if !ch.IsThread() {
			b.suggestionInNewThread(ctx, r, msg, prompt, header)
			return
		}
		msg.Channel = parent
	}
	msg.NewSession = true
	th := b.thread(ic.ChannelID, parent, ic.GuildID)
	if _, err := b.engine.Handle(ctx, th, msg); err != nil {
		b.release(th)
		b.refuse(ctx, r, err, false)
		return
	}
	if err := th.Reply(ctx, header+"\n🆕 a new session starts here"); err != nil {
		b.log.Warn("announcing a session started from a suggestion failed", "err", err)
	}
}

// suggestionInNewThread posts a starter message, "🎨 @user: prompt", in
// the press's channel and starts the session's thread from it once the
// engine accepted the request; a refused request deletes the starter.
func (b *Bot) suggestionInNewThread(ctx context.Context, r *response, msg core.Message, prompt, header string) {
	starter, err := b.dg.ChannelMessageSendComplex(r.ic.ChannelID, &discordgo.MessageSend{Content: clip(header),
		AllowedMentions: &discordgo.MessageAllowedMentions{}}, discordgo.WithContext(ctx))
	if err != nil {
		b.refuse(ctx, r, core.WrapError(core.Unavailable, err, "Easel could not post here; check that it may send messages in this channel"), false)
		return
	}
	msg.Thread = starter.ID
	th := b.pendingThread(starter.ID, r.ic.ChannelID, r.ic.GuildID)
	if _, err := b.engine.Handle(ctx, th, msg); err != nil {
		th.opened()
		b.release(th)
		if derr := b.dg.ChannelMessageDelete(r.ic.ChannelID, starter.ID, discordgo.WithContext(ctx)); derr != nil {
			b.log.Warn("deleting the starter of a refused suggestion failed", "err", derr)
		}
		b.refuse(ctx, r, err, false)
		return
	}
	if err := b.startThread(ctx, th, starter.ID, prompt); err != nil {
		b.refuse(ctx, r, err, false)
	}
}
