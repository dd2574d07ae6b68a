package discord_test

import (
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord"
	"github.com/easel-bot/easel/bots/discord/discordtest"
)

// opsLog is a discord.Metrics that counts what it is told.
type opsLog struct {
	mu                    sync.Mutex
	acks, dupes, replayed int
}

func (o *opsLog) Acked(time.Duration) { o.mu.Lock(); o.acks++; o.mu.Unlock() }
func (o *opsLog) Duplicate()          { o.mu.Lock(); o.dupes++; o.mu.Unlock() }
func (o *opsLog) Replayed(n int)      { o.mu.Lock(); o.replayed += n; o.mu.Unlock() }

func (o *opsLog) acked() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acks
}

var _ discord.Metrics = (*opsLog)(nil)

// TestReady: the bot is not ready before it holds its shards, is once
// every shard it holds is connected, and is not while one is cut off,
// naming it.
func TestReady(t *testing.T) {
	t.Parallel()
	ops := &opsLog{}
	h := start(t, func(s *setup) { s.cfg.Metrics = ops })
	srv := h.srv
	srv.Wait(t, "the bot to be ready", func() bool { return h.bot.Ready() == nil })

	ic := srv.Command(t, srv.Alice, srv.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a lighthouse"})
	srv.Wait(t, "the deferred response", func() bool { return srv.GetInteraction(ic.ID).AckType != 0 })
	srv.Wait(t, "the ack observed", func() bool { return ops.acked() == 1 })

	srv.Close() // the gateway goes, and does not come back
	srv.Wait(t, "the bot to be not ready", func() bool { return h.bot.Ready() != nil })
	if err := h.bot.Ready(); err.Error() != "shards [0] of [0] not connected" {
		t.Errorf("Ready() = %q", err)
	}
}
