package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// Kinds of delivery, as Socket Mode names them; http mode's are mapped to
// the same names.
const (
	kindEvent       = "events_api"
	kindCommand     = "slash_commands"
	kindInteraction = "interactive"
)

// keyPrefix marks Slack's deliveries in the shared inbox.
const keyPrefix = "slack:"

// maxKey bounds the length of a delivery id kept as it is.
const maxKey = 128

// accept records a delivery in the inbox and queues its work, before Slack
// is told it arrived. It reports false when the delivery could not be
// recorded: then it must not be acknowledged, so that Slack delivers it
// again. A delivery Easel does nothing with is acknowledged without being
// recorded, and a duplicate (a retry of one already received, even by an
// earlier process) is acknowledged and dropped.
func (b *Bot) accept(ctx context.Context, kind string, payload json.RawMessage, retry int) bool {
	key, job, err := b.decode(kind, payload)
	switch {
	case err != nil:
		b.log.Warn("slack: delivery not understood; acknowledged and dropped", "kind", kind, "err", err)
		return true
	case job == nil:
		return true
	}
	if len(key) > maxKey { // no real id is this long; keep it within bbolt's key limit
		key = digest([]byte(key))
	}
	if retry > 0 {
		b.log.Debug("slack: delivery retried", "key", key, "retry", retry)
	}
	first, err := b.events.Receive(ctx, keyPrefix+key, kind, payload, eventTTL)
	if err != nil {
		b.log.Error("slack: could not record a delivery; leaving it for Slack to retry", "key", key, "err", err)
		return false
	}
	if !first {
		b.log.Info("slack: duplicate delivery ignored", "key", key, "retry", retry)
		return true
	}
	b.enqueue(b.handling(keyPrefix+key, job))
	return true
}

// replay queues the work of the deliveries an earlier process acknowledged
// but stopped before handling.
func (b *Bot) replay(ctx context.Context) error {
	left, err := b.events.Unhandled(ctx)
	if err != nil {
		return fmt.Errorf("slack: read the deliveries left unhandled: %w", err)
	}
	n := 0
	for _, d := range left {
		key, ok := strings.CutPrefix(d.Key, keyPrefix)
		if !ok {
			continue
		}
		_, job, err := b.decode(d.Kind, d.Payload)
		if err != nil || job == nil {
			b.log.Warn("slack: an unhandled delivery cannot be replayed; dropping it", "key", key, "err", err)
			job = func(context.Context) {}
		}
		b.enqueue(b.handling(d.Key, job))
		n++
	}
	if n > 0 {
		b.log.Info("slack: handling deliveries an earlier process received", "count", n)
	}
	return nil
}

// handling wraps job so that its delivery is marked handled when it returns,
// and gives it the delivery's key (see delivery).
func (b *Bot) handling(key string, job func(context.Context)) func(context.Context) {
	return func(ctx context.Context) {
		job(context.WithValue(ctx, deliveryKey{}, key))
		if err := b.events.Handled(context.WithoutCancel(ctx), key); err != nil {
			b.log.Warn("slack: could not mark a delivery handled; a restart may handle it again", "key", key, "err", err)
		}
	}
}

// decode turns a delivery into the key it is deduplicated under and the work
// it asks for; job is nil when Easel does nothing with it.
func (b *Bot) decode(kind string, payload json.RawMessage) (key string, job func(context.Context), err error) {
	switch kind {
	case kindEvent:
		ev, err := slackevents.ParseEvent(payload, slackevents.OptionNoVerifyToken())
		if err != nil {
			return "", nil, fmt.Errorf("event: %w", err)
		}
		return b.event(ev)
	case kindCommand:
		var cmd slackapi.SlashCommand
		if err := json.Unmarshal(payload, &cmd); err != nil {
			return "", nil, fmt.Errorf("slash command: %w", err)
		}
		return either(cmd.TriggerID, digest(payload)), func(ctx context.Context) { b.command(ctx, cmd) }, nil
	case kindInteraction:
		var cb slackapi.InteractionCallback
		if err := json.Unmarshal(payload, &cb); err != nil {
			return "", nil, fmt.Errorf("interaction: %w", err)
		}
		a, ok := pressed(cb)
		if !ok {
			return "", nil, nil
		}
		return either(cb.TriggerID, cb.User.ID+"@"+a.ActionTs), func(ctx context.Context) { b.interaction(ctx, cb) }, nil
	}
	return "", nil, nil
}

// digest names a payload that carries no id of its own.
func digest(payload []byte) string {
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:12])
}

// deliveryKey is the context key of the delivery a job handles.
type deliveryKey struct{}

// delivery returns the inbox key of the delivery ctx's job handles, for
// core.Message.Delivery: the turn it records marks the delivery handled in
// the same commit, so no restart can handle it twice.
func delivery(ctx context.Context) string {
	key, _ := ctx.Value(deliveryKey{}).(string)
	return key
}
