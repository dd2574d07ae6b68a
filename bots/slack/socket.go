package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// runSocket serves deliveries over Socket Mode until ctx ends. Every
// envelope is acknowledged before its work is queued.
func (b *Bot) runSocket(ctx context.Context) error {
	sm := socketmode.New(b.raw, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack: socket mode: %w", err)
		case evt := <-sm.Events:
			b.socketEvent(ctx, sm, evt)
		}
	}
}

// socketEvent acknowledges one Socket Mode event and queues its work.
func (b *Bot) socketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive:
		if err := sm.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
			b.log.Warn("slack: ack failed", "err", err)
		}
	case socketmode.EventTypeErrorBadMessage:
		// An envelope slack-go cannot parse (an event type it does not know,
		// say): ack it anyway, or Slack redelivers it.
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				ID string `json:"envelope_id"`
			}
			if json.Unmarshal(bad.Message, &env) == nil && env.ID != "" {
				_ = sm.AckCtx(ctx, env.ID, nil)
			}
			b.log.Debug("slack: unparsed socket message acknowledged", "err", bad.Cause)
		}
		return
	case socketmode.EventTypeConnectionError:
		b.log.Warn("slack: socket mode connection failed; retrying", "err", connectionError(evt.Data))
		return
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("slack: the app-level token was rejected")
		return
	default:
		b.log.Debug("slack: socket mode event", "type", evt.Type)
		return
	}
	switch data := evt.Data.(type) {
	case slackevents.EventsAPIEvent:
		b.event(data, evt.Request.RetryAttempt)
	case slackapi.SlashCommand:
		b.enqueue(func(ctx context.Context) { b.command(ctx, data) })
	case slackapi.InteractionCallback:
		b.enqueue(func(ctx context.Context) { b.interaction(ctx, data) })
	}
}

func connectionError(data any) error {
	if ev, ok := data.(*slackapi.ConnectionErrorEvent); ok {
		return ev.ErrorObj
	}
	return errors.New("unknown")
}
