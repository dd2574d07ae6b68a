package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// runSocket serves deliveries over Socket Mode until ctx ends. Every
// envelope is recorded and its work queued before it is acknowledged.
func (b *Bot) runSocket(ctx context.Context) error {
	sm := socketmode.New(b.api, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
	ctx, cancel := context.WithCancel(ctx)
	defer b.acks.Wait()
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

// socketEvent acknowledges one Socket Mode event and queues its work. At
// most maxAccepting deliveries are being recorded at once; beyond that the
// reader waits.
func (b *Bot) socketEvent(ctx context.Context, sm *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive:
		// Recorded and acknowledged off the reader, so deliveries arriving
		// together share one commit (see storage's Receive).
		req := evt.Request
		b.accepting <- struct{}{}
		b.acks.Go(func() {
			defer func() { <-b.accepting }()
			if !b.accept(ctx, req.Type, req.Payload, req.RetryAttempt) {
				return // not acknowledged: Slack delivers it again
			}
			if err := sm.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
				b.log.Warn("slack: ack failed", "err", err)
			}
		})
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
	case socketmode.EventTypeConnectionError:
		b.log.Warn("slack: socket mode connection failed; retrying", "err", connectionError(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("slack: the app-level token was rejected")
	default:
		b.log.Debug("slack: socket mode event", "type", evt.Type)
	}
}

func connectionError(data any) error {
	if ev, ok := data.(*slackapi.ConnectionErrorEvent); ok {
		return ev.ErrorObj
	}
	return errors.New("unknown")
}
