package slack

import (
	"errors"
	"time"

	"github.com/easel-bot/easel/bots/inbox"
)

// Metrics observes the adapter, for monitoring: how fast it acknowledges
// deliveries, and what its inbox drops and takes up again. Its methods
// must return at once and be safe for concurrent use.
type Metrics interface {
	inbox.Metrics
	// Acked is called when a delivery is acknowledged, d after it arrived.
	Acked(d time.Duration)
}

// noMetrics is the Metrics of a Bot configured without any.
type noMetrics struct{}

func (noMetrics) Acked(time.Duration) {}
func (noMetrics) Duplicate()          {}
func (noMetrics) Replayed(int)        {}

// Ready reports whether the bot takes deliveries now: nil when its Socket
// Mode connection is open or, in http mode, its listener serves; an error
// saying what it waits for otherwise.
func (b *Bot) Ready() error {
	switch {
	case b.connected.Load():
		return nil
	case b.cfg.Mode == "http":
		return errors.New("not serving the Events API")
	default:
		return errors.New("not connected over Socket Mode")
	}
}
