package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bwmarrin/discordgo"
)

// tokenLife is how long an interaction's token works.
const tokenLife = 15 * time.Minute

// response answers one interaction: through the interaction's token while
// Discord takes it, and with the bot token in the interaction's channel
// once it does not: 15 minutes after the interaction, or when the process
// that took the interaction stopped before acknowledging it and the next
// start replays it. Its methods are called from one goroutine at a time.
type response struct {
	b    *Bot
	ic   *discordgo.Interaction
	dead bool               // the token no longer works
	sent *discordgo.Message // the bot-token message that stands in for the original response
}

// respond returns the response of ic; a token past its life is known dead.
func (b *Bot) respond(ic *discordgo.Interaction) *response {
	at, err := discordgo.SnowflakeTimestamp(ic.ID)
	return &response{b: b, ic: ic, dead: err == nil && time.Since(at) >= tokenLife}
}

// tokenDead reports whether err says that an interaction's token or
// webhook no longer works (expired, or never acknowledged).
func tokenDead(err error) bool {
	var rest *discordgo.RESTError
	if !errors.As(err, &rest) {
		return false
	}
	if rest.Message != nil {
		switch rest.Message.Code {
		case discordgo.ErrCodeInvalidWebhookTokenProvided, discordgo.ErrCodeUnknownWebhook, discordgo.ErrCodeUnknownInteraction:
			return true
		}
	}
	return rest.Response != nil && rest.Response.StatusCode == http.StatusUnauthorized
}

// fallBack notes that the token failed with err and reports whether to
// answer with the bot token instead.
func (r *response) fallBack(err error) bool {
	if !tokenDead(err) {
		return false
	}
	r.b.log.Info("an interaction's token no longer works; answering in its channel", "interaction", r.ic.ID, "err", err)
	r.dead = true
	return true
}

// ack sends the deferred response of a replayed interaction, in case the
// process that took it stopped before it could; a token that no longer
// works is noted.
func (r *response) ack(ctx context.Context) {
	if r.dead {
		return
	}
	if err := r.b.ack(ctx, r.ic); err != nil {
		r.fallBack(err)
	}
}

// edit sets the content of the original response and returns its message:
// the interaction's own, or once the token is dead a message in the
// interaction's channel, posted the first time and edited after.
func (r *response) edit(ctx context.Context, content string) (*discordgo.Message, error) {
	content = clip(content)
	none := &discordgo.MessageAllowedMentions{}
	if !r.dead {
		m, err := r.b.dg.InteractionResponseEdit(r.ic, &discordgo.WebhookEdit{Content: &content, AllowedMentions: none},
			discordgo.WithContext(ctx))
		if err == nil || !r.fallBack(err) {
			return m, err
		}
	}
	if r.sent == nil {
		m, err := r.b.dg.ChannelMessageSendComplex(r.ic.ChannelID, &discordgo.MessageSend{Content: content, AllowedMentions: none},
			discordgo.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("discord: answer interaction %s in its channel: %w", r.ic.ID, err)
		}
		r.sent = m
		return m, nil
	}
	m, err := r.b.dg.ChannelMessageEditComplex(&discordgo.MessageEdit{Channel: r.ic.ChannelID, ID: r.sent.ID,
		Content: &content, AllowedMentions: none}, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("discord: edit the answer to interaction %s: %w", r.ic.ID, err)
	}
	return m, nil
}

// private sets the content of a deferred response only the interaction's
// user sees, or once the token is dead tells them text in the
// interaction's channel (see tell).
func (r *response) private(ctx context.Context, text string) error {
	if !r.dead {
		content := clip(text)
		_, err := r.b.dg.InteractionResponseEdit(r.ic, &discordgo.WebhookEdit{Content: &content,
			AllowedMentions: &discordgo.MessageAllowedMentions{}}, discordgo.WithContext(ctx))
		if err == nil || !r.fallBack(err) {
			return err
		}
	}
	return r.tell(ctx, text)
}

// withdraw deletes the original response.
func (r *response) withdraw(ctx context.Context) error {
	if !r.dead {
		err := r.b.dg.InteractionResponseDelete(r.ic, discordgo.WithContext(ctx))
		if err == nil || !r.fallBack(err) {
			return err
		}
	}
	if r.sent == nil {
		return nil
	}
	err := r.b.dg.ChannelMessageDelete(r.ic.ChannelID, r.sent.ID, discordgo.WithContext(ctx))
	r.sent = nil
	return err
}

// tell tells the interaction's user text: in an ephemeral follow-up, or
// once the token is dead in a message in the interaction's channel that
// mentions them (and no one else).
func (r *response) tell(ctx context.Context, text string) error {
	if !r.dead {
		_, err := r.b.dg.FollowupMessageCreate(r.ic, true, &discordgo.WebhookParams{
			Content: clip(text), Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: &discordgo.MessageAllowedMentions{},
		}, discordgo.WithContext(ctx))
		if err == nil || !r.fallBack(err) {
			return err
		}
	}
	who := user(r.ic.User, r.ic.Member, nil).ID
	_, err := r.b.dg.ChannelMessageSendComplex(r.ic.ChannelID, &discordgo.MessageSend{
		Content: clip(fmt.Sprintf("<@%s> %s", who, text)), AllowedMentions: &discordgo.MessageAllowedMentions{Users: []string{who}},
	}, discordgo.WithContext(ctx))
	return err
}
