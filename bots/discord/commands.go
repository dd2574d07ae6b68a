package discord

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/bwmarrin/discordgo"
)

// commandName is the slash command Easel registers.
const commandName = "imagine"

// Permissions are what the bot needs in a server: see channels, send
// messages (also in threads), start public threads, attach files, read
// message history (to reply to messages and read the result replied to) and
// add reactions.
const Permissions = discordgo.PermissionViewChannel |
	discordgo.PermissionSendMessages |
	discordgo.PermissionSendMessagesInThreads |
	discordgo.PermissionCreatePublicThreads |
	discordgo.PermissionAttachFiles |
	discordgo.PermissionReadMessageHistory |
	discordgo.PermissionAddReactions

// InviteURL returns the OAuth2 URL that adds the bot of application appID
// to a server with the scopes bot and applications.commands and exactly
// Permissions.
func InviteURL(appID string) string {
	q := url.Values{
		"client_id":   {appID},
		"permissions": {strconv.FormatInt(Permissions, 10)},
		"scope":       {"bot applications.commands"},
	}
	return "https://discord.com/oauth2/authorize?" + q.Encode()
}

// imagineCommand returns /imagine with its options. global commands also
// work in DMs with the bot.
func imagineCommand(global bool) *discordgo.ApplicationCommand {
	one := 1.0
	cmd := &discordgo.ApplicationCommand{
		Name:        commandName,
		Type:        discordgo.ChatApplicationCommand,
		Description: "Make an image; reply in its thread to refine it",
		Options: []*discordgo.ApplicationCommandOption{
			{Type: discordgo.ApplicationCommandOptionString, Name: "prompt", Required: true,
				Description: "What to draw; flags such as --ar 16:9 or --no text may follow"},
			{Type: discordgo.ApplicationCommandOptionString, Name: optAspect, Description: "Aspect ratio",
				Choices: choices(aspects...)},
			{Type: discordgo.ApplicationCommandOptionString, Name: optQuality, Description: "Rendering quality",
				Choices: choices(qualities...)},
			{Type: discordgo.ApplicationCommandOptionInteger, Name: "n", Description: "How many images (1–4)",
				MinValue: &one, MaxValue: 4},
			{Type: discordgo.ApplicationCommandOptionString, Name: optModel, Description: "Model name, such as gpt-image-2",
				MaxLength: 64},
			{Type: discordgo.ApplicationCommandOptionAttachment, Name: "image", Description: "An image to start from"},
			styleOption(optStyle, "A style: words, flags and images added to the prompt (/easel style list)", false),
		},
	}
	if global {
		cmd.Contexts = &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	}
	return cmd
}

// register creates (or updates) /imagine, /describe and /easel in each
// configured guild, or globally. A guild that refuses is logged and
// skipped, so one server that removed the bot does not stop it; a global
// failure is an error.
func (b *Bot) register(ctx context.Context) error {
	app := b.appID()
	if len(b.cfg.Guilds) == 0 {
		for _, cmd := range []*discordgo.ApplicationCommand{imagineCommand(true), describeCommand(true), easelCommand(true)} {
			if _, err := b.dg.ApplicationCommandCreate(app, "", cmd, discordgo.WithContext(ctx)); err != nil {
				return fmt.Errorf("discord: register /%s: %w", cmd.Name, err)
			}
		}
		return nil
	}
	for _, g := range b.cfg.Guilds {
		if _, err := b.dg.ApplicationCommandCreate(app, g, imagineCommand(false), discordgo.WithContext(ctx)); err != nil {
			b.log.Error("registering /imagine in a guild failed; was the bot invited with the applications.commands scope?",
				"guild", g, "err", err)
			continue
		}
		for _, cmd := range []*discordgo.ApplicationCommand{describeCommand(false), easelCommand(false)} {
			if _, err := b.dg.ApplicationCommandCreate(app, g, cmd, discordgo.WithContext(ctx)); err != nil {
				b.log.Error("registering a command in a guild failed", "command", cmd.Name, "guild", g, "err", err)
			}
		}
	}
	return nil
}
