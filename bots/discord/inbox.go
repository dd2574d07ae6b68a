package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

// Kinds of delivery in the inbox.
const (
	kindInteraction = "interaction"
	kindMessage     = "message"
)

// record records an interaction in the inbox, before it is acknowledged,
// and returns its inbox key. It reports false for an interaction recorded
// before (a RESUME replay), which is dropped unanswered, and for one that
// cannot be recorded, whose user is told so in the interaction's only
// response: Discord does not resend an interaction, so it could not be
// promised.
func (b *Bot) record(ctx context.Context, ic *discordgo.Interaction) (key string, ok bool) {
	payload, err := json.Marshal(ic)
	if err == nil {
		var first bool
		key, first, err = b.inbox.Record(ctx, ic.ID, kindInteraction, payload)
		if err == nil && !first {
			b.log.Info("duplicate delivery ignored", "key", key)
			return key, false
		}
	}
	if err == nil {
		return key, true
	}
	b.log.Error("recording an interaction failed; refusing it", "interaction", ic.ID, "err", err)
	refusal := core.WrapError(core.Unavailable, err, "Easel can't save new requests right now; try again in a few minutes")
	err = b.dg.InteractionRespond(ic, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content: clip(b.userMessage(refusal, "recording an interaction failed")), Flags: discordgo.MessageFlagsEphemeral,
			AllowedMentions: &discordgo.MessageAllowedMentions{},
		},
	}, discordgo.WithContext(ctx))
	if err != nil {
		b.log.Warn("telling a user their request was not saved failed", "interaction", ic.ID, "err", err)
	}
	return key, false
}

// taken is what take did with a message.
type taken int

const (
	ignored taken = iota // Easel does nothing with it, or it could not be recorded
	handled              // recorded and handled
	seen                 // recorded before, and dropped
)

// take records a person's message in the inbox and handles it, if Easel
// acts on it (see route) and it was not recorded before: by this process
// (a RESUME replay, a catch-up reading it again) or by an earlier one.
func (b *Bot) take(ctx context.Context, m *discordgo.Message) taken {
	act := b.route(ctx, m)
	if act == nil {
		return ignored
	}
	payload, err := json.Marshal(m)
	if err != nil {
		b.log.Error("encoding a message failed; dropping it", "message", m.ID, "err", err)
		return ignored
	}
	key, first, err := b.inbox.Record(ctx, m.ID, kindMessage, payload)
	switch {
	case err != nil:
		b.log.Error("recording a message failed; dropping it", "message", m.ID, "err", err)
		return ignored
	case !first:
		b.log.Debug("a message handled before was dropped", "key", key)
		return seen
	}
	b.inbox.Handle(ctx, key, func(ctx context.Context, key string) bool {
		act(ctx, key)
		return true
	})
	return handled
}

// replay takes up the interactions and messages an earlier process
// recorded but did not finish handling: each interaction in a goroutine of
// its own, each message on its channel's lane, ahead of anything the
// gateway sends. A replayed interaction is acknowledged again in case the
// process stopped before it could, and answered with the bot token if its
// token no longer works.
func (b *Bot) replay(ctx context.Context) error {
	left, err := b.inbox.Left(ctx)
	if err != nil {
		return fmt.Errorf("discord: %w", err)
	}
	for _, d := range left {
		switch d.Kind {
		case kindInteraction:
			ic := new(discordgo.Interaction)
			if err := json.Unmarshal(d.Payload, ic); err != nil {
				b.drop(ctx, d.Key, err)
				continue
			}
			r := b.respond(ic)
			job := b.interactionJob(r)
			b.async(ctx, func(ctx context.Context) {
				b.work(ctx, func() {
					r.ack(ctx)
					b.inbox.Handle(ctx, d.Key, job)
				})
			})
		case kindMessage:
			m := new(discordgo.Message)
			err := json.Unmarshal(d.Payload, m)
			if err == nil && m.ChannelID == "" {
				err = errors.New("a message without a channel")
			}
			if err != nil {
				b.drop(ctx, d.Key, err)
				continue
			}
			b.inOrder(ctx, m.ChannelID, func(ctx context.Context) {
				act := b.route(ctx, m)
				if act == nil {
					b.inbox.Done(ctx, d.Key)
					return
				}
				b.inbox.Handle(ctx, d.Key, func(ctx context.Context, key string) bool {
					act(ctx, key)
					return true
				})
			})
		default:
			b.drop(ctx, d.Key, fmt.Errorf("unknown kind %q", d.Kind))
		}
	}
	if len(left) > 0 {
		b.log.Info("handling deliveries an earlier process received", "count", len(left))
	}
	return nil
}

// drop marks a delivery that cannot be replayed handled.
func (b *Bot) drop(ctx context.Context, key string, err error) {
	b.log.Warn("an unhandled delivery cannot be replayed; dropping it", "key", key, "err", err)
	b.inbox.Done(ctx, key)
}
