package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// ConnectionSlots are leased slots, one per Socket Mode connection, shared
// by every process running the app, so that together they never open more
// connections than Slack allows. A grant has a token that grows with every
// grant.
type ConnectionSlots interface {
	// Lease is how long a slot stays held without a renewal; a Bot renews
	// every third of it, and closes its connection when it could not
	// renew for a whole lease.
	Lease() time.Duration
	// Acquire takes a free slot, if there is one.
	Acquire(ctx context.Context) (slot int, token int64, ok bool, err error)
	// Renew extends the lease of slot and reports whether token is still
	// its latest grant.
	Renew(ctx context.Context, slot int, token int64) (bool, error)
	// Release frees slot if token is still its latest grant.
	Release(ctx context.Context, slot int, token int64) error
}

// runSocket serves deliveries over Socket Mode until ctx ends: at once, or
// with Config.Connections while it holds a connection slot. A process that
// finds every slot taken serves nothing on Slack, says so, and tries
// again every third of a lease.
func (b *Bot) runSocket(ctx context.Context) error {
	slots := b.cfg.Connections
	if slots == nil {
		return b.serveSocket(ctx)
	}
	period := slots.Lease() / 3
	waiting := false
	for {
		slot, token, ok, err := slots.Acquire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			b.log.Warn("slack: taking a Socket Mode connection slot failed; trying again", "err", err)
		case !ok:
			if !waiting {
				b.log.Warn("slack: every Socket Mode connection Slack allows this app is held by other replicas; this one serves nothing on Slack until one is free",
					"retry_every", period)
			}
			waiting = true
		default:
			waiting = false
			b.log.Info("slack: holding a Socket Mode connection slot", "slot", slot)
			err := b.holdSlot(ctx, slots, slot, token)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if rerr := slots.Release(rctx, slot, token); rerr != nil {
				b.log.Warn("slack: freeing the Socket Mode connection slot failed; it frees itself when its lease ends", "err", rerr)
			}
			cancel()
			if err != nil || ctx.Err() != nil {
				return err
			}
			continue // the slot was lost: take one again
		}
		t := time.NewTimer(period)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// holdSlot serves Socket Mode while it renews slot, every third of a
// lease. It returns nil when ctx ends or the slot is lost: taken over
// after this process froze, or not renewed for a whole lease.
func (b *Bot) holdSlot(ctx context.Context, slots ConnectionSlots, slot int, token int64) error {
	lease := slots.Lease()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		until := time.Now().Add(lease)
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			ok, err := slots.Renew(sctx, slot, token)
			switch {
			case sctx.Err() != nil:
				return
			case err == nil && ok:
				until = start.Add(lease)
				continue
			case err == nil:
				b.log.Warn("slack: another replica took this Socket Mode connection slot over (this one was frozen or cut off); closing the connection", "slot", slot)
			case time.Now().After(until):
				b.log.Warn("slack: the Socket Mode connection slot could not be renewed for a whole lease; closing the connection", "slot", slot, "err", err)
			default:
				b.log.Warn("slack: renewing the Socket Mode connection slot failed; trying again", "err", err)
				continue
			}
			cancel()
			return
		}
	}()
	err := b.serveSocket(sctx)
	if ctx.Err() == nil && sctx.Err() != nil {
		return nil // lost
	}
	return err
}

// serveSocket serves deliveries over Socket Mode until ctx ends. Every
// envelope is recorded and its work queued before it is acknowledged.
func (b *Bot) serveSocket(ctx context.Context) error {
	sm := socketmode.New(b.app, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
	ctx, cancel := context.WithCancel(ctx)
	defer b.acks.Wait()
	defer cancel()
	defer b.connected.Store(false)
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
		// together share one fdatasync of the inbox journal (see storage's
		// Receive).
		req, arrived := evt.Request, time.Now()
		b.accepting <- struct{}{}
		b.acks.Go(func() {
			defer func() { <-b.accepting }()
			if !b.accept(ctx, req.Type, req.Payload, req.RetryAttempt) {
				return // not acknowledged: Slack delivers it again
			}
			if err := sm.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
				b.log.Warn("slack: ack failed", "err", err)
				return
			}
			b.metrics.Acked(time.Since(arrived))
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
	case socketmode.EventTypeConnected:
		b.connected.Store(true)
	case socketmode.EventTypeConnecting:
		b.connected.Store(false)
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		b.log.Warn("slack: socket mode connection failed; retrying", "err", connectionError(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		b.connected.Store(false)
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
