package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/easel-bot/easel/bots/inbox"
)

// Kinds of delivery, as Socket Mode names them; http mode's are mapped to
// the same names.
const (
	kindEvent       = "events_api"
	kindCommand     = "slash_commands"
	kindInteraction = "interactive"
)

// accept records a delivery in the inbox and queues its work, before Slack
// is told it arrived. It reports false when the delivery could not be
// recorded: then it must not be acknowledged, so that Slack delivers it
// again. A delivery Easel does nothing with is acknowledged without being
// recorded, and a duplicate (a retry of one already received, even by an
// earlier process) is acknowledged and dropped.
func (b *Bot) accept(ctx context.Context, kind string, payload json.RawMessage, retry int) bool {
	id, job, err := b.decode(kind, payload)
	switch {
	case err != nil:
		b.log.Warn("slack: delivery not understood; acknowledged and dropped", "kind", kind, "err", err)
		return true
	case job == nil:
		return true
	}
	if retry > 0 {
		b.log.Debug("slack: delivery retried", "id", id, "retry", retry)
	}
	key, first, err := b.inbox.Record(ctx, id, kind, payload)
	if err != nil {
		b.log.Error("slack: could not record a delivery; leaving it for Slack to retry", "key", key, "err", err)
		return false
	}
	if !first {
		b.log.Info("slack: duplicate delivery ignored", "key", key, "retry", retry)
		return true
	}
	b.enqueue(func(ctx context.Context) { b.inbox.Handle(ctx, key, job) })
	return true
}

// replay queues the work of the deliveries an earlier process acknowledged
// but stopped before handling, or set aside to wait.
func (b *Bot) replay(ctx context.Context) error {
	left, err := b.inbox.Left(ctx)
	if err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	for _, d := range left {
		_, job, err := b.decode(d.Kind, d.Payload)
		if err != nil || job == nil {
			b.log.Warn("slack: an unhandled delivery cannot be replayed; dropping it", "key", d.Key, "err", err)
			b.inbox.Done(ctx, d.Key)
			continue
		}
		b.enqueue(func(ctx context.Context) { b.inbox.Handle(ctx, d.Key, job) })
	}
	if len(left) > 0 {
		b.log.Info("slack: handling deliveries an earlier process received", "count", len(left))
	}
	return nil
}

// later returns a function that handles the delivery key with job, for a
// delivery taken up again after it waited (see inbox.Inbox.Park).
func (b *Bot) later(key string, job inbox.Job) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		defer cancel()
		b.inbox.Handle(ctx, key, job)
	}
}

// decode turns a delivery into the id it is deduplicated under and the work
// it asks for; job is nil when Easel does nothing with it.
func (b *Bot) decode(kind string, payload json.RawMessage) (id string, job inbox.Job, err error) {
	switch kind {
	case kindEvent:
		ev, err := slackevents.ParseEvent(payload, slackevents.OptionNoVerifyToken())
		if err != nil {
			return "", nil, fmt.Errorf("event: %w", err)
		}
		id, job, err := b.event(ev)
		return either(id, digest(payload)), job, err
	case kindCommand:
		var cmd slackapi.SlashCommand
		if err := json.Unmarshal(payload, &cmd); err != nil {
			return "", nil, fmt.Errorf("slash command: %w", err)
		}
		return either(cmd.TriggerID, digest(payload)), func(ctx context.Context, key string) bool {
			b.command(ctx, key, cmd)
			return true
		}, nil
	case kindInteraction:
		var cb slackapi.InteractionCallback
		if err := json.Unmarshal(payload, &cb); err != nil {
			return "", nil, fmt.Errorf("interaction: %w", err)
		}
		a, ok := pressed(cb)
		if !ok {
			return "", nil, nil
		}
		return either(cb.TriggerID, cb.User.ID+"@"+a.ActionTs), func(ctx context.Context, key string) bool {
			b.interaction(ctx, key, cb)
			return true
		}, nil
	}
	return "", nil, nil
}

// digest names a payload that carries no id of its own.
func digest(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:12])
}
