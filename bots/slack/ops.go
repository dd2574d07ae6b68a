package slack

import (
	"errors"

	"github.com/easel-bot/easel/bots/inbox"
)

// Metrics observes the adapter, for monitoring: how fast it acknowledges
// deliveries, and what its inbox drops and takes up again.
type Metrics = inbox.AdapterMetrics

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
